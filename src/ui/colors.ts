/**
 * Colour scales for the maps: a perceptually ordered sequential scale (dark blue → teal →
 * yellow, viridis-like) for values from min to max, and fixed colours for teacher and student.
 */
const STOPS: [number, number, number][] = [
  [68, 1, 84],
  [59, 82, 139],
  [33, 145, 140],
  [94, 201, 98],
  [253, 231, 37],
];

export const TEACHER_COLOUR = '#f6ad55';
export const STUDENT_COLOUR = '#63b3ed';
export const GT_COLOUR = '#ffffff';

/** t in [0, 1] → rgb() on the sequential scale (clamped). */
export function sequential(t: number): string {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(x));
  const f = x - i;
  const a = STOPS[i]!;
  const b = STOPS[i + 1]!;
  const c = (k: number) => Math.round(a[k]! + (b[k]! - a[k]!) * f);
  return `rgb(${c(0)}, ${c(1)}, ${c(2)})`;
}

/** Min and max of the finite values (0, 1 when there are none; a flat map gets a unit span). */
export function extent(values: ArrayLike<number>): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo === Infinity) return [0, 1];
  return hi > lo ? [lo, hi] : [lo, lo + 1];
}

/** A short, honest number: 3 significant digits, exponent form for very small or large values. */
export function formatValue(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a < 1e-3 || a >= 1e5) return v.toExponential(2);
  return Number(v.toPrecision(3)).toString();
}

/** The value every finite entry shares, or null when they differ (or there are none). */
export function constantValue(values: ArrayLike<number>): number | null {
  let seen: number | null = null;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) continue;
    if (seen === null) seen = v;
    else if (v !== seen) return null;
  }
  return seen;
}
