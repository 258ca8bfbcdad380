/** A small SVG chart of several runs' curves on one scale (one colour per run), for comparisons. */
export const RUN_COLORS = ['#2563eb', '#dc2626', '#059669', '#d97706', '#7c3aed', '#db2777'];

export function OverlayChart({ title, series, width = 300, height = 140, percent = false }: { title: string; series: { label: string; points: [number, number][] }[]; width?: number; height?: number; percent?: boolean }) {
  const all = series.flatMap((s) => s.points);
  const pad = { l: 44, r: 8, t: 18, b: 20 };
  if (all.length === 0) {
    return (
      <figure className="overlay-chart">
        <figcaption>{title}</figcaption>
        <p className="muted small">not logged</p>
      </figure>
    );
  }
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (y0 === y1) [y0, y1] = [y0 - 0.5 * Math.abs(y0 || 1), y1 + 0.5 * Math.abs(y1 || 1)];
  // Percentages (mAP) never go below 0.
  if (percent) y0 = Math.max(0, y0);
  const sx = (x: number) => pad.l + ((x - x0) / (x1 - x0 || 1)) * (width - pad.l - pad.r);
  const sy = (y: number) => height - pad.b - ((y - y0) / (y1 - y0)) * (height - pad.t - pad.b);
  const fmt = (v: number) => (percent ? `${(100 * v).toFixed(1)}` : Math.abs(v) >= 100 || Math.abs(v) < 0.01 ? v.toExponential(1) : v.toPrecision(3));
  return (
    <figure className="overlay-chart" data-testid={`overlay-${title}`}>
      <figcaption>{title}</figcaption>
      <svg width={width} height={height} role="img" aria-label={title}>
        <line x1={pad.l} x2={width - pad.r} y1={height - pad.b} y2={height - pad.b} className="axis" />
        <line x1={pad.l} x2={pad.l} y1={pad.t} y2={height - pad.b} className="axis" />
        <text x={pad.l - 4} y={sy(y1) + 4} textAnchor="end" className="tick">{fmt(y1)}</text>
        <text x={pad.l - 4} y={sy(y0)} textAnchor="end" className="tick">{fmt(y0)}</text>
        <text x={pad.l} y={height - 4} className="tick">{x0}</text>
        <text x={width - pad.r} y={height - 4} textAnchor="end" className="tick">step {x1}</text>
        {series.map((s, i) =>
          s.points.length === 1 ? (
            <circle key={s.label} cx={sx(s.points[0]![0])} cy={sy(s.points[0]![1])} r={3} fill={RUN_COLORS[i % RUN_COLORS.length]} />
          ) : (
            <polyline key={s.label} fill="none" stroke={RUN_COLORS[i % RUN_COLORS.length]} strokeWidth={1.5} points={s.points.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ')} />
          ),
        )}
      </svg>
    </figure>
  );
}
