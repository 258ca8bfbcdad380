import { HeatmapRect } from '@visx/heatmap';
import { useEffect, useMemo, useRef, useState, type MouseEvent } from 'react';
import type { Letterbox } from '../../detect/letterbox';
import { constantValue, extent, formatValue, sequential } from '../colors';
import { cellAt, mapToRgba } from '../heatmap-draw';
import { hoverCell, leaveCell, useMapHover } from '../hover-link';

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
  /** Fixed colour domain, e.g. [0, 1] for masks or a range shared with a pair; default the map's own extent. */
  domain?: [number, number];
  /** Says where the domain comes from when it is not the map's own (e.g. "shared by T and S"). */
  scaleNote?: string;
  /** Maps of one link group outline the same cell when one is hovered. */
  link?: string;
  testId?: string;
}

const pct = (f: number) => `${(f * 100).toFixed(4)}%`;

/**
 * One map on a <canvas> (one pixel per cell, scaled up without smoothing), optionally over the
 * photo in the model-input frame, with its colour scale and the value under the pointer; the
 * hovered cell is an outlined element over the canvas, so moving the pointer never redraws the map.
 */
export function Heatmap({ values, height, width, title, size = 168, overlay, domain, scaleNote, link, testId }: HeatmapProps) {
  const [lo, hi] = useMemo(() => domain ?? extent(values), [domain, values]);
  const constant = useMemo(() => constantValue(values), [values]);
  const canvas = useRef<HTMLCanvasElement>(null);
  const alpha = overlay ? 158 : 255;
  useEffect(() => {
    const ctx = canvas.current?.getContext('2d');
    if (!ctx) return;
    ctx.putImageData(new ImageData(mapToRgba(values, lo, hi, alpha), width, height), 0, 0);
  }, [values, lo, hi, alpha, width, height]);
  // A linked map follows its group's hover; a lone map keeps its own.
  const [own, setOwn] = useState<{ x: number; y: number } | null>(null);
  const linked = useMapHover((s) => (link !== undefined && s.group === link ? `${s.x},${s.y}` : null));
  const cell = link !== undefined ? (linked ? { x: Number(linked.split(',')[0]), y: Number(linked.split(',')[1]) } : null) : own;
  const onMove = (e: MouseEvent<HTMLDivElement>) => {
    const r = e.currentTarget.getBoundingClientRect();
    const c = cellAt(e.clientX - r.left, e.clientY - r.top, r.width, r.height, width, height);
    if (!c) return;
    if (link !== undefined) hoverCell(link, c.x, c.y);
    else if (!own || own.x !== c.x || own.y !== c.y) setOwn(c);
  };
  const onLeave = () => (link !== undefined ? leaveCell(link) : setOwn(null));
  const lb = overlay?.letterbox;
  const frame = overlay?.inputSize ?? 1;
  const value = cell ? (values[cell.y * width + cell.x] ?? NaN) : undefined;
  return (
    <figure className="heatmap" style={{ width: size }} data-testid={testId ?? 'heatmap'} data-min={lo} data-max={hi} data-cells={width * height}>
      <figcaption>{title}</figcaption>
      <div
        className="heatmap-frame"
        style={{ width: size, height: size }}
        onMouseMove={onMove}
        onMouseLeave={onLeave}
        role="img"
        aria-label={`${title}: ${height}×${width} map from ${formatValue(lo)} to ${formatValue(hi)}`}
      >
        {overlay && lb && (
          <img
            src={overlay.imageUrl}
            alt=""
            style={{ left: pct(lb.padLeft / frame), top: pct(lb.padTop / frame), width: pct(lb.resizedWidth / frame), height: pct(lb.resizedHeight / frame) }}
          />
        )}
        <canvas ref={canvas} width={width} height={height} />
        {cell && (
          <div
            className="heatmap-hover"
            data-testid="heatmap-hover"
            data-cell={`${cell.x},${cell.y}`}
            style={{ left: pct(cell.x / width), top: pct(cell.y / height), width: pct(1 / width), height: pct(1 / height) }}
          />
        )}
      </div>
      {constant === null || domain ? <ColourScale lo={lo} hi={hi} note={scaleNote} /> : <p className="colour-scale">every cell is {formatValue(constant)}</p>}
      <p className="hover-value mono">{cell ? `(${cell.x}, ${cell.y}) ${formatValue(value!)}` : '\u00a0'}</p>
    </figure>
  );
}

/** The colour ramp as a one-row @visx heatmap: RAMP_BINS cells, low to high. */
const RAMP_BINS = 16;
const RAMP_COLUMNS = Array.from({ length: RAMP_BINS }, (_, i) => ({ bin: i, bins: [{ bin: 0, count: i / (RAMP_BINS - 1) }] }));

export function ColourScale({ lo, hi, note }: { lo: number; hi: number; note?: string }) {
  return (
    <div className="colour-scale" title={note}>
      <span className="mono">{formatValue(lo)}</span>
      <svg className="ramp" viewBox={`0 0 ${RAMP_BINS} 1`} preserveAspectRatio="none" aria-hidden="true">
        <HeatmapRect data={RAMP_COLUMNS} xScale={(i) => i} yScale={() => 0} binWidth={1} binHeight={1} gap={0} colorScale={(t) => sequential(Number(t))} shapeRendering="crispEdges" />
      </svg>
      <span className="mono">{formatValue(hi)}</span>
      {note && <span className="scale-note">{note}</span>}
    </div>
  );
}
