import { HeatmapRect } from '@visx/heatmap';
import { useMemo, useState, type MouseEvent } from 'react';
import type { Letterbox } from '../../detect/letterbox';
import { constantValue, extent, formatValue, sequential } from '../colors';

interface Cell {
  count: number;
}
interface Column {
  bins: Cell[];
}

export interface HeatmapProps {
  /** Row-major values of one [H,W] map. */
  values: Float32Array;
  height: number;
  width: number;
  title: string;
  /** Drawn size in CSS pixels (square frame). */
  size?: number;
  /** When given, the map is laid over the letterboxed photo (the map covers the model input). */
  overlay?: { imageUrl: string; letterbox: Letterbox; inputSize: number };
  /** Fixed colour domain, e.g. [0, 1] for masks; default the map's own extent. */
  domain?: [number, number];
  testId?: string;
}

/**
 * One map as a grid of cells (@visx/heatmap), optionally over the photo in the model-input frame,
 * with its colour scale and the value under the pointer.
 */
export function Heatmap({ values, height, width, title, size = 168, overlay, domain, testId }: HeatmapProps) {
  const [lo, hi] = useMemo(() => domain ?? extent(values), [domain, values]);
  const constant = useMemo(() => constantValue(values), [values]);
  const [hover, setHover] = useState<{ x: number; y: number; v: number } | null>(null);
  const columns = useMemo<Column[]>(
    () => Array.from({ length: width }, (_, x) => ({ bins: Array.from({ length: height }, (_, y) => ({ count: values[y * width + x] ?? NaN })) })),
    [values, height, width],
  );
  const frame = overlay?.inputSize ?? Math.max(width, height);
  const cellW = frame / width;
  const cellH = frame / height;
  const colour = (v: number | { valueOf(): number }) => sequential((Number(v) - lo) / (hi - lo));
  const onMove = (e: MouseEvent<SVGSVGElement>) => {
    const r = e.currentTarget.getBoundingClientRect();
    const x = Math.floor(((e.clientX - r.left) / r.width) * width);
    const y = Math.floor(((e.clientY - r.top) / r.height) * height);
    if (x >= 0 && x < width && y >= 0 && y < height) setHover({ x, y, v: values[y * width + x] ?? NaN });
  };
  const lb = overlay?.letterbox;
  return (
    <figure className="heatmap" data-testid={testId ?? 'heatmap'} data-min={lo} data-max={hi}>
      <figcaption>{title}</figcaption>
      <svg
        viewBox={`0 0 ${frame} ${frame}`}
        width={size}
        height={size}
        onMouseMove={onMove}
        onMouseLeave={() => setHover(null)}
        role="img"
        aria-label={`${title}: ${height}×${width} map from ${formatValue(lo)} to ${formatValue(hi)}`}
      >
        {overlay && lb && (
          <image href={overlay.imageUrl} x={lb.padLeft} y={lb.padTop} width={lb.resizedWidth} height={lb.resizedHeight} preserveAspectRatio="none" />
        )}
        <HeatmapRect<Column, Cell>
          data={columns}
          xScale={(i) => i * cellW}
          yScale={(j) => j * cellH}
          binWidth={cellW}
          binHeight={cellH}
          gap={0}
          colorScale={colour}
          opacityScale={() => (overlay ? 0.62 : 1)}
          bins={(c) => c.bins}
          count={(b) => b.count}
        />
        {hover && <rect x={hover.x * cellW} y={hover.y * cellH} width={cellW} height={cellH} fill="none" stroke="#fff" strokeWidth={frame / 160} />}
      </svg>
      {constant === null || domain ? <ColourScale lo={lo} hi={hi} /> : <p className="colour-scale">every cell is {formatValue(constant)}</p>}
      <p className="hover-value mono">{hover ? `(${hover.x}, ${hover.y}) ${formatValue(hover.v)}` : '\u00a0'}</p>
    </figure>
  );
}

export function ColourScale({ lo, hi }: { lo: number; hi: number }) {
  const stops = [0, 0.25, 0.5, 0.75, 1];
  return (
    <div className="colour-scale">
      <span className="mono">{formatValue(lo)}</span>
      <span className="ramp" style={{ background: `linear-gradient(to right, ${stops.map((t) => sequential(t)).join(', ')})` }} />
      <span className="mono">{formatValue(hi)}</span>
    </div>
  );
}
