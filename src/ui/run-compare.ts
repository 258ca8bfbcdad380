/**
 * Comparing runs of the history: their configs as flat key paths with the values that differ,
 * the final mAP per class side by side with each run's difference from the first, and the loss
 * curves of one term for every run. Plain data in and out, for the comparison panel.
 */
import type { RunRecord } from '../provenance/run-record';
import { lastAfter } from '../provenance/run-record';

/** A JSON value flattened to "a.b.c" → value (lists of methods keyed by their id). */
export function flatten(value: unknown, prefix = '', out: Record<string, string> = {}): Record<string, string> {
  if (Array.isArray(value)) {
    const byId = value.every((v) => typeof v === 'object' && v !== null && typeof (v as { id?: unknown }).id === 'string');
    if (value.length === 0) out[prefix] = '[]';
    value.forEach((v, i) => flatten(v, `${prefix}[${byId ? (v as { id: string }).id : i}]`, out));
  } else if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else out[prefix] = JSON.stringify(value);
  return out;
}

/** What a run was: its config, every method's full parameters, models, data and backend, flat. */
export function runFacts(r: Pick<RunRecord, 'config' | 'methods' | 'teacher' | 'student' | 'data' | 'backend'>): Record<string, string> {
  const { methods: _m, lab: _lab, ...config } = r.config as RunRecord['config'] & { lab?: unknown };
  return flatten({
    teacher: r.teacher,
    student: { name: r.student.name, weightsSha256: r.student.weightsSha256 },
    config,
    methods: r.methods.map((m) => ({ id: m.id, scale: m.scale, params: m.params })),
    data: r.data,
    backend: r.backend,
  });
}

/** The keys whose values differ between the runs (a key one run lacks shows as "—"), in order. */
export function configDiff(runs: readonly Pick<RunRecord, 'config' | 'methods' | 'teacher' | 'student' | 'data' | 'backend'>[]): { key: string; values: string[] }[] {
  const facts = runs.map(runFacts);
  const keys = [...new Set(facts.flatMap((f) => Object.keys(f)))].sort();
  return keys.map((key) => ({ key, values: facts.map((f) => f[key] ?? '—') })).filter((row) => new Set(row.values).size > 1);
}

/** Final AP per class (the last evaluation after training), each run's difference from the first. */
export function perClassTable(runs: readonly Pick<RunRecord, 'evaluations'>[]): {
  rows: { className: string; numGt: number; ap: (number | null)[]; diff: (number | null)[] }[];
  map: (number | null)[];
  mapDiff: (number | null)[];
} {
  const finals = runs.map((r) => lastAfter(r));
  const classes = new Map<string, number>();
  for (const f of finals) for (const c of f?.perClass ?? []) if (c.numGt > 0) classes.set(c.className, Math.max(classes.get(c.className) ?? 0, c.numGt));
  const diff = (xs: (number | null)[]) => xs.map((x) => (x === null || xs[0] === null || xs[0] === undefined ? null : x - xs[0]));
  const rows = [...classes.keys()].sort().map((className) => {
    const ap = finals.map((f) => f?.perClass.find((c) => c.className === className)?.apAll ?? null);
    return { className, numGt: classes.get(className)!, ap, diff: diff(ap) };
  });
  const map = finals.map((f) => f?.mapAll ?? null);
  return { rows, map, mapDiff: diff(map) };
}

/** Every loss term any of the runs logged ('loss' first). */
export function termsOf(runs: readonly Pick<RunRecord, 'log'>[]): string[] {
  const names = new Set<string>(['loss']);
  for (const r of runs) for (const row of r.log) for (const k of Object.keys(row.terms)) names.add(k);
  return [...names];
}

/** One term's curve for a run: [step, value] where the term was logged and finite. */
export function curve(r: Pick<RunRecord, 'log'>, term: string): [number, number][] {
  const out: [number, number][] = [];
  for (const row of r.log) {
    const v = term === 'loss' ? row.loss : row.terms[term];
    if (v !== undefined && Number.isFinite(v)) out.push([row.step, v]);
  }
  return out;
}

/** The mAP curve of a run: its evaluations after training, by step. */
export function mapCurve(r: Pick<RunRecord, 'evaluations'>): [number, number][] {
  return r.evaluations
    .filter((e) => (e.target === 'after' || e.target === 'before') && e.mapAll !== null)
    .map((e): [number, number] => [e.target === 'before' ? 0 : e.step, e.mapAll!])
    .sort((a, b) => a[0] - b[0]);
}
