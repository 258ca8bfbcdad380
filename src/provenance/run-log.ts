/**
 * The per-step log of a run, one row per step, as the command line writes it to log.jsonl and
 * the lab offers it for download (JSON lines or CSV): step, epoch, learning rate, total loss,
 * every loss term, the gradient norm, each part's gradient norm where it was measured, whether
 * the update was applied, the teacher's boxes on unlabelled photos, and the step's milliseconds.
 */
export interface LogRow {
  step: number;
  epoch: number;
  lr: number;
  loss: number;
  terms: Record<string, number>;
  gradNorm: number;
  gradientNorms?: Record<string, number>;
  applied: boolean;
  pseudoBoxes: number;
  ms: number;
}

/** The fields of a trainer's step event that the log keeps. */
export interface StepLike {
  step: number;
  epoch: number;
  lr: number;
  loss: number;
  terms: Record<string, number>;
  gradNorm: number;
  gradientNorms?: Record<string, number>;
  applied: boolean;
  pseudoBoxes: number;
  msPerStep: number;
}

/** One log row from a step event (keys in log.jsonl's order). */
export function logRow(e: StepLike): LogRow {
  return {
    step: e.step,
    epoch: e.epoch,
    lr: e.lr,
    loss: e.loss,
    terms: { ...e.terms },
    gradNorm: e.gradNorm,
    ...(e.gradientNorms ? { gradientNorms: { ...e.gradientNorms } } : {}),
    applied: e.applied,
    pseudoBoxes: e.pseudoBoxes,
    ms: Math.round(e.msPerStep),
  };
}

/** log.jsonl: one JSON object per line, a newline after each. */
export function toJsonLines(rows: readonly LogRow[]): string {
  return rows.map((r) => `${JSON.stringify(r)}\n`).join('');
}

/** The CSV columns for these rows: every term and every measured part, in order of first appearance. */
export function csvColumns(rows: readonly LogRow[]): string[] {
  const terms = new Set<string>();
  const parts = new Set<string>();
  for (const r of rows) {
    for (const k of Object.keys(r.terms)) terms.add(k);
    for (const k of Object.keys(r.gradientNorms ?? {})) parts.add(k);
  }
  return ['step', 'epoch', 'lr', 'loss', ...[...terms].map((t) => `terms.${t}`), 'gradNorm', ...[...parts].map((p) => `gradientNorms.${p}`), 'applied', 'pseudoBoxes', 'ms'];
}

const cell = (v: unknown): string => {
  if (v === undefined || v === null) return '';
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : String(v);
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

/** The same rows as CSV, a header line first; a term absent at a step is an empty cell. */
export function toCsv(rows: readonly LogRow[]): string {
  const columns = csvColumns(rows);
  const value = (r: LogRow, c: string): unknown => {
    if (c.startsWith('terms.')) return r.terms[c.slice(6)];
    if (c.startsWith('gradientNorms.')) return r.gradientNorms?.[c.slice(14)];
    return r[c as keyof LogRow];
  };
  return [columns.join(','), ...rows.map((r) => columns.map((c) => cell(value(r, c))).join(','))].join('\n') + '\n';
}

/** Parses log.jsonl text (blank lines ignored); a broken line names its number. */
export function parseJsonLines(text: string): LogRow[] {
  const rows: LogRow[] = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    try {
      rows.push(JSON.parse(line) as LogRow);
    } catch (error) {
      throw new Error(`log line ${i + 1} is not JSON (${(error as Error).message})`, { cause: error });
    }
  });
  return rows;
}
