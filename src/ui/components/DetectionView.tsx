import { classColour, formatMs } from '../format';
import { useLabStore } from '../store';
import type { LabeledDetection } from '../../detect/types';
import type { ImageDetections } from '../../worker/lab';

/** The photo with the teacher's boxes drawn over it, in the photo's own pixel coordinates. */
function Overlay({ url, result, shown }: { url: string; result: ImageDetections; shown: LabeledDetection[] }) {
  const { imageWidth: w, imageHeight: h } = result;
  const font = Math.max(w, h) / 36;
  return (
    <div className="overlay-frame">
      <img src={url} alt={result.imageName} width={w} height={h} />
      <svg viewBox={`0 0 ${w} ${h}`} preserveAspectRatio="none" aria-label="detections">
        {shown.map((d, i) => {
          const [x1, y1, x2, y2] = d.box;
          const colour = classColour(d.classIndex);
          const label = `${d.className} ${(d.score * 100).toFixed(0)}%`;
          const labelY = y1 > font * 1.3 ? y1 - font * 0.3 : y1 + font;
          return (
            <g key={i} data-testid="detection-box" data-class={d.className}>
              <rect x={x1} y={y1} width={x2 - x1} height={y2 - y1} fill="none" stroke={colour} strokeWidth={font / 6} />
              <rect x={x1} y={labelY - font} width={label.length * font * 0.58 + font * 0.4} height={font * 1.2} fill={colour} />
              <text x={x1 + font * 0.2} y={labelY} fontSize={font} fill="#111">
                {label}
              </text>
            </g>
          );
        })}
      </svg>
    </div>
  );
}

export function DetectionView() {
  const image = useLabStore((s) => s.image);
  const detections = useLabStore((s) => s.detections);
  const notice = useLabStore((s) => s.notice);
  const threshold = useLabStore((s) => s.scoreThreshold);
  const result = detections.status === 'ready' ? detections.value : null;
  const shown = result ? result.detections.filter((d) => d.score >= threshold) : [];
  return (
    <section className="card viewer" aria-labelledby="viewer-title">
      <h2 id="viewer-title">Quick look: teacher on any photo</h2>
      {notice && <p className="error" role="alert" data-testid="notice">{notice}</p>}
      {detections.status === 'loading' && <p className="muted" data-testid="detecting">{detections.detail}…</p>}
      {image && result ? (
        <div className="viewer-body">
          <Overlay url={image.url} result={result} shown={shown} />
          <div className="detections-side">
            <p className="muted small" data-testid="detection-summary">
              {result.imageName}: {result.imageWidth}×{result.imageHeight}, run at {result.inputSize}×{result.inputSize} on{' '}
              {result.backend}; {shown.length} objects at score ≥ {threshold.toFixed(2)}; inference {formatMs(result.timings.inferenceMs)}, pre{' '}
              {formatMs(result.timings.preprocessMs)}, post {formatMs(result.timings.postprocessMs)}
            </p>
            <table className="detections" data-testid="detections-table">
              <thead>
                <tr>
                  <th>Class</th>
                  <th>Score</th>
                  <th>Box (x1, y1, x2, y2)</th>
                </tr>
              </thead>
              <tbody>
                {shown.map((d, i) => (
                  <tr key={i} data-testid="detection-row" data-class={d.className}>
                    <td>
                      <span className="swatch" style={{ background: classColour(d.classIndex) }} />
                      {d.className}
                    </td>
                    <td>{d.score.toFixed(2)}</td>
                    <td className="mono">{d.box.map((v) => v.toFixed(0)).join(', ')}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </div>
      ) : (
        detections.status !== 'loading' && <p className="muted">No photo yet. Drop a photo above to see the teacher's detections.</p>
      )}
    </section>
  );
}
