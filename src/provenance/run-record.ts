/**
 * A run as the history keeps it, the same in the lab (IndexedDB) and on the command line
 * (run.json in --out): the config with every method parameter, the teacher and the student with
 * their weight hashes, the data, the backend, the per-step log (the curves), the evaluations and
 * where its checkpoint is. Plain JSON; `parseRunRecord` checks one that came from a file or from
 * storage and names what is wrong with it.
 */
import type { ModelManifest } from '../models/manifest';
import type { ExperimentConfig } from '../train/config';
import { dataProvenance, derivationOf, methodsUsed, type DataInput, type DataProvenance, type DerivationProvenance, type MethodCatalogEntry, type MethodUsed } from './model-card';
import type { LogRow } from './run-log';

export const RUN_FORMAT = 1;
export const RUN_FILE = 'run.json';
export const RUN_CHECKPOINT_FILE = 'checkpoint.dlc';

export type RunStatus = 'running' | 'stopped' | 'finished' | 'error';

/** One evaluation of a run: which model, at which step, the means and the per-class AP. */
export interface RunEvaluation {
  target: 'teacher' | 'before' | 'after';
  step: number;
  split: string;
  inputSize: number;
  images: number;
  mapAll: number | null;
  map11: number | null;
  cocoAp: number | null;
  perClass: { className: string; apAll: number | null; numGt: number }[];
}

export interface RunRecord {
  runFormat: 1;
  id: string;
  name: string;
  origin: 'lab' | 'cli';
  createdAt: string;
  updatedAt: string;
  status: RunStatus;
  error?: string;
  projectVersion: string;
  config: ExperimentConfig & { lab?: unknown };
  /** Every method with all its parameters (defaults merged with the config's overrides). */
  methods: MethodUsed[];
  teacher: { name: string; weightsSha256: string | null };
  student: { name: string; weightsSha256: string | null; derivation: DerivationProvenance | null };
  data: DataProvenance | null;
  backend: string;
  steps: number;
  totalSteps: number;
  log: LogRow[];
  evaluations: RunEvaluation[];
  /** The latest checkpoint of the run (its bytes are kept beside the record, or in checkpoint.dlc). */
  checkpoint: { step: number; savedAt: string; bytes: number } | null;
}

/** A run without its log, for lists. */
export type RunSummary = Omit<RunRecord, 'log'> & { logRows: number };

export interface NewRunInput {
  id: string;
  name?: string;
  origin: 'lab' | 'cli';
  createdAt: string;
  projectVersion: string;
  config: ExperimentConfig & { lab?: unknown };
  methodCatalog: readonly MethodCatalogEntry[];
  teacher: { name: string; weightsSha256: string | null };
  student: { manifest: ModelManifest; weightsSha256: string | null };
  data: DataInput | null;
  backend: string;
  totalSteps?: number;
}

/** A name that says what the run is: its methods, input size and date. */
export function defaultRunName(config: ExperimentConfig, createdAt: string): string {
  const methods = config.methods.length ? config.methods.map((m) => m.id).join(' + ') : 'fine-tuning';
  return `${methods}, ${config.schedule.inputSize}², ${createdAt.slice(0, 16).replace('T', ' ')}`;
}

export function newRunRecord(i: NewRunInput): RunRecord {
  return {
    runFormat: RUN_FORMAT,
    id: i.id,
    name: i.name ?? defaultRunName(i.config, i.createdAt),
    origin: i.origin,
    createdAt: i.createdAt,
    updatedAt: i.createdAt,
    status: 'running',
    projectVersion: i.projectVersion,
    config: structuredClone(i.config),
    methods: methodsUsed(i.config.methods, i.methodCatalog),
    teacher: { ...i.teacher },
    student: { name: i.student.manifest.name, weightsSha256: i.student.weightsSha256, derivation: derivationOf(i.student.manifest) },
    data: i.data ? dataProvenance(i.data) : null,
    backend: i.backend,
    steps: 0,
    totalSteps: i.totalSteps ?? 0,
    log: [],
    evaluations: [],
    checkpoint: null,
  };
}

/** An evaluation report as a run keeps it. */
export function runEvaluation(
  target: RunEvaluation['target'],
  step: number,
  split: string,
  r: { inputSize: number; mapAll: number | null; map11: number | null; coco: { ap: number | null }; counts: { images: number }; perClass: { className: string; apAll: number | null; numGt: number }[] },
): RunEvaluation {
  return {
    target,
    step,
    split,
    inputSize: r.inputSize,
    images: r.counts.images,
    mapAll: r.mapAll,
    map11: r.map11,
    cocoAp: r.coco.ap,
    perClass: r.perClass.map((c) => ({ className: c.className, apAll: c.apAll, numGt: c.numGt })),
  };
}

/** The run with one more evaluation (one per target and step: a repeat replaces the earlier one). */
export function withEvaluation(record: RunRecord, e: RunEvaluation, now: string): RunRecord {
  const kept = record.evaluations.filter((x) => !(x.target === e.target && x.step === e.step && x.split === e.split && x.inputSize === e.inputSize));
  return { ...record, evaluations: [...kept, e], updatedAt: now };
}

export function summarize(record: RunRecord): RunSummary {
  const { log, ...rest } = record;
  return { ...rest, logRows: log.length };
}

/** The final evaluation of the student after training, if one was made. */
export function lastAfter(record: Pick<RunRecord, 'evaluations'>): RunEvaluation | undefined {
  return record.evaluations.filter((e) => e.target === 'after').sort((a, b) => a.step - b.step).pop();
}

/** Checks an untrusted run record (a file, or an entry read back from storage), naming every problem. */
export function parseRunRecord(value: unknown, origin: string): RunRecord {
  const problems: string[] = [];
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${origin} is not a run record (not a JSON object).`);
  const v = value as Record<string, unknown>;
  if (v.runFormat !== RUN_FORMAT) problems.push(`"runFormat" must be ${RUN_FORMAT} (got ${JSON.stringify(v.runFormat)})`);
  for (const k of ['id', 'name', 'createdAt', 'backend'] as const) if (typeof v[k] !== 'string' || !v[k]) problems.push(`"${k}" must be a non-empty string`);
  if (v.origin !== 'lab' && v.origin !== 'cli') problems.push('"origin" must be "lab" or "cli"');
  const config = v.config as Record<string, unknown> | undefined;
  if (typeof config !== 'object' || config === null || !Array.isArray(config.methods) || typeof config.schedule !== 'object') problems.push('"config" must be an experiment config (methods, schedule)');
  if (!Array.isArray(v.methods)) problems.push('"methods" must be a list');
  if (typeof v.teacher !== 'object' || v.teacher === null || typeof (v.teacher as { name?: unknown }).name !== 'string') problems.push('"teacher.name" must be a string');
  if (typeof v.student !== 'object' || v.student === null || typeof (v.student as { name?: unknown }).name !== 'string') problems.push('"student.name" must be a string');
  if (!Array.isArray(v.log)) problems.push('"log" must be a list of steps');
  else if (!(v.log as unknown[]).every((r) => typeof r === 'object' && r !== null && typeof (r as LogRow).step === 'number' && typeof (r as LogRow).loss === 'number')) problems.push('"log" has rows without a numeric step and loss');
  if (!Array.isArray(v.evaluations)) problems.push('"evaluations" must be a list');
  if (typeof v.steps !== 'number') problems.push('"steps" must be a number');
  if (problems.length) throw new Error(`${origin} is not a readable run: ${problems.join('; ')}.`);
  return value as unknown as RunRecord;
}
