import { useMemo } from 'react';
import { formatValue } from '../colors';
import type { LossPoint } from '../store';
import { TERM_LEGEND, termLabel } from '../term-names';

/** Term names in reading order: the total, the detection loss and its parts, then each method. */
export function orderTerms(points: readonly LossPoint[]): string[] {
  const names = new Set<string>();
  for (const p of points) for (const k of Object.keys(p.values)) names.add(k);
  const rank = (n: string) => (n === 'loss' ? 0 : n === 'detection' ? 1 : n.startsWith('detection/') ? 2 : 3);
  return [...names].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

const seriesOf = (points: readonly LossPoint[], name: string) =>
  points.map((p) => [p.step, p.values[name]] as const).filter((p): p is readonly [number, number] => p[1] !== undefined);

function Chart({ name, points, previous }: { name: string; points: readonly LossPoint[]; previous: readonly LossPoint[] }) {
  const w = 214;
  const h = 84;
  const pad = { l: 4, r: 4, t: 4, b: 4 };
  const series = seriesOf(points, name);
  const finite = series.filter(([, v]) => Number.isFinite(v));
  const before = seriesOf(previous, name).filter(([, v]) => Number.isFinite(v));
  const last = series[series.length - 1]?.[1];
  // One scale for this run and the one it replaced, so the two compare.
  const both = [...finite, ...before];
  const lo = Math.min(...both.map(([, v]) => v));
  const hi = Math.max(...both.map(([, v]) => v));
  const steps = [...series, ...before].map(([st]) => st);
  const s0 = steps.length > 0 ? Math.min(...steps) : 0;
  const s1 = steps.length > 0 ? Math.max(...steps) : 1;
  const x = (s: number) => pad.l + ((s - s0) / Math.max(1, s1 - s0)) * (w - pad.l - pad.r);
  const y = (v: number) => pad.t + (hi > lo ? (1 - (v - lo) / (hi - lo)) : 0.5) * (h - pad.t - pad.b);
  const pathOf = (pts: readonly (readonly [number, number])[]) => pts.map(([s, v], i) => `${i ? 'L' : 'M'}${x(s).toFixed(1)},${y(v).toFixed(1)}`).join('');
  const path = pathOf(finite);
  const main = name === 'loss';
  return (
    <figure className={`loss-chart${main ? ' main' : ''}`} data-testid="loss-chart" data-term={name} data-points={finite.length} data-previous-points={before.length}>
      <figcaption>
        <span className={`term term-${termLabel(name).kind}`}>{termLabel(name).text}</span>
        <span className="mono last">{last === undefined ? '–' : formatValue(last)}</span>
      </figcaption>
      <svg viewBox={`0 0 ${w} ${h}`} preserveAspectRatio="none" role="img" aria-label={`${name} over steps ${s0} to ${s1}`}>
        <line x1={pad.l} x2={w - pad.r} y1={h - pad.b} y2={h - pad.b} stroke="var(--line)" />
        {before.length > 1 && (
          <path className="previous-run" d={pathOf(before)} fill="none" stroke="#6b7a8f" strokeWidth={1.2} strokeDasharray="4 3" vectorEffect="non-scaling-stroke" />
        )}
        {finite.length > 1 && <path d={path} fill="none" stroke={main ? 'var(--accent)' : '#9fb3c8'} strokeWidth={1.4} vectorEffect="non-scaling-stroke" />}
        {finite.length === 1 && (
          <path d={`M${w / 2 - 3},${h / 2}L${w / 2 + 3},${h / 2}`} stroke="var(--accent)" strokeWidth={5} strokeLinecap="round" vectorEffect="non-scaling-stroke" />
        )}
      </svg>
      {finite.length > 0 && (
        <p className="range mono">
          {formatValue(lo)} – {formatValue(hi)} · steps {finite[0]![0]}–{finite[finite.length - 1]![0]}
        </p>
      )}
    </figure>
  );
}

/** Small multiples: one curve per loss term, each on its own scale (terms differ by orders of magnitude). */
export function LossCharts({ points, previous }: { points: readonly LossPoint[]; previous?: { history: LossPoint[]; label: string } | null }) {
  const names = useMemo(() => orderTerms(points.length > 0 ? points : (previous?.history ?? [])), [points, previous]);
  const before = previous?.history ?? [];
  if (points.length === 0 && before.length === 0) return <p className="muted">The curves of every loss term appear here from the first step.</p>;
  return (
    <>
      {before.length > 0 && (
        <p className="muted small" data-testid="previous-run">
          Dashed grey: the {previous!.label}, on the same scale.
        </p>
      )}
      <p className="muted small term-legend">{TERM_LEGEND}</p>
      <div className="loss-grid" data-testid="loss-charts">
        {names.map((n) => (
          <Chart key={n} name={n} points={points} previous={before} />
        ))}
      </div>
    </>
  );
}
