import type { Letterbox } from '../../detect/letterbox';
import type { InspectDetection, InspectObject } from '../../worker/inspect';
import { nameColour } from '../format';

/**
 * The photo as the model sees it (letterboxed in the square input), with ground truth (dashed)
 * and one model's detections, all in model-input pixels.
 */
export function InputFrame({
  imageUrl,
  letterbox,
  inputSize,
  objects,
  detections,
  title,
  size = 300,
  testId,
}: {
  imageUrl: string;
  letterbox: Letterbox;
  inputSize: number;
  objects: InspectObject[];
  detections: InspectDetection[];
  title: string;
  size?: number;
  testId?: string;
}) {
  const s = inputSize;
  const font = s / 26;
  return (
    <figure className="input-frame" data-testid={testId}>
      <figcaption>
        {title} <span className="muted">({detections.length} boxes)</span>
      </figcaption>
      <svg viewBox={`0 0 ${s} ${s}`} width={size} height={size} role="img" aria-label={`${title}: ${detections.length} detections`}>
        <rect width={s} height={s} fill="#000" />
        <image href={imageUrl} x={letterbox.padLeft} y={letterbox.padTop} width={letterbox.resizedWidth} height={letterbox.resizedHeight} preserveAspectRatio="none" />
        {objects.map((o, i) => (
          <rect key={`gt${i}`} x={o.box[0]} y={o.box[1]} width={o.box[2] - o.box[0]} height={o.box[3] - o.box[1]} fill="none" stroke="#fff" strokeDasharray={`${font / 2} ${font / 3}`} strokeWidth={font / 8} />
        ))}
        {detections.map((d, i) => {
          const c = nameColour(d.className);
          const label = `${d.className} ${(d.score * 100).toFixed(0)}`;
          return (
            <g key={i} data-testid="inspect-box" data-box={d.box.map((v) => v.toFixed(2)).join(",")} data-score={d.score.toFixed(4)} data-class={d.className}>
              <rect x={d.box[0]} y={d.box[1]} width={d.box[2] - d.box[0]} height={d.box[3] - d.box[1]} fill="none" stroke={c} strokeWidth={font / 6} />
              <rect x={d.box[0]} y={Math.max(0, d.box[1] - font * 1.1)} width={label.length * font * 0.55 + font * 0.3} height={font * 1.1} fill={c} />
              <text x={d.box[0] + font * 0.15} y={Math.max(0, d.box[1] - font * 1.1) + font * 0.85} fontSize={font} fill="#111">
                {label}
              </text>
            </g>
          );
        })}
      </svg>
    </figure>
  );
}
