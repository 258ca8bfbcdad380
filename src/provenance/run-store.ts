/**
 * The run history over a key-value backend (IndexedDB in the lab; a map in tests): each run is
 * one record under `run:<id>`, its per-step log under `run-log:<id>` and its latest checkpoint
 * under `run-checkpoint:<id>`, so listing the history reads neither logs nor checkpoints. A full disk is reported with what is used and what to do;
 * an entry that cannot be read is reported and skipped, and the other runs are listed as usual.
 */
import { parseRunRecord, summarize, type RunRecord, type RunSummary } from './run-record';

export interface RunBackend {
  get<T>(key: string): Promise<T | undefined>;
  put(key: string, value: unknown): Promise<void>;
  delete(key: string): Promise<void>;
  /** Every key that starts with the prefix. */
  keys(prefix: string): Promise<string[]>;
}

export interface StorageUse {
  usage: number;
  quota: number;
}

export interface RunProblem {
  key: string;
  message: string;
}

const RUN_PREFIX = 'run:';
const CHECKPOINT_PREFIX = 'run-checkpoint:';
const LOG_PREFIX = 'run-log:';
export const runKey = (id: string) => `${RUN_PREFIX}${id}`;
export const runLogKey = (id: string) => `${LOG_PREFIX}${id}`;
export const runCheckpointKey = (id: string) => `${CHECKPOINT_PREFIX}${id}`;

const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;

/** Storage ran out while saving: says how much is used of how much, and what was not saved. */
export class StorageFullError extends Error {
  constructor(
    readonly what: string,
    readonly use: StorageUse | null,
    cause: unknown,
  ) {
    super(
      `The browser's storage is full${use ? ` (${mb(use.usage)} of ${mb(use.quota)} used)` : ''}: ${what} was not saved. Delete runs from the history (export them first to keep them) to make room.`,
      { cause },
    );
    this.name = 'StorageFullError';
  }
}

export function isQuotaError(error: unknown): boolean {
  const e = error as { name?: string; message?: string } | null;
  return !!e && (e.name === 'QuotaExceededError' || /quota|disk is full|storage is full/i.test(e.message ?? ''));
}

export class RunStore {
  constructor(
    private readonly backend: RunBackend,
    private readonly estimate: () => Promise<StorageUse | null> = async () => null,
  ) {}

  /** Storage used and available (navigator.storage.estimate in the browser), or null where unknown. */
  usage(): Promise<StorageUse | null> {
    return this.estimate().catch(() => null);
  }

  private async write(key: string, value: unknown, what: string): Promise<void> {
    try {
      await this.backend.put(key, value);
    } catch (error) {
      if (isQuotaError(error)) throw new StorageFullError(what, await this.usage(), error);
      throw error;
    }
  }

  /** Saves the run (and its latest checkpoint when given; the checkpoint first, so a record never points at a missing one). */
  async save(record: RunRecord, checkpoint?: Uint8Array): Promise<void> {
    if (checkpoint) await this.write(runCheckpointKey(record.id), checkpoint, `the checkpoint of "${record.name}" (step ${record.checkpoint?.step ?? record.steps})`);
    await this.write(runLogKey(record.id), record.log, `the log of "${record.name}"`);
    await this.write(runKey(record.id), stored(record), `the run "${record.name}"`);
  }

  /** Every run that reads, newest first; entries that do not read are named in `problems` and skipped. */
  async list(): Promise<{ runs: RunSummary[]; problems: RunProblem[] }> {
    const runs: RunSummary[] = [];
    const problems: RunProblem[] = [];
    for (const key of await this.backend.keys(RUN_PREFIX)) {
      try {
        const record = parseRunRecord(await this.backend.get(key), `stored entry ${key}`) as RunRecord & { logRows?: number };
        if (runKey(record.id) !== key) throw new Error(`stored entry ${key} holds run "${record.id}"`);
        runs.push({ ...summarize(record), logRows: record.logRows ?? record.log.length });
      } catch (error) {
        problems.push({ key, message: error instanceof Error ? error.message : String(error) });
      }
    }
    runs.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
    return { runs, problems };
  }

  async get(id: string): Promise<RunRecord> {
    const value = await this.backend.get(runKey(id));
    if (value === undefined) throw new Error(`There is no run "${id}" in the history (deleted?).`);
    const { logRows: _rows, ...record } = parseRunRecord(value, `run "${id}"`) as RunRecord & { logRows?: number };
    const log = await this.backend.get<unknown>(runLogKey(id));
    if (log === undefined) return record;
    return parseRunRecord({ ...record, log }, `run "${id}" (its log)`);
  }

  async checkpoint(id: string): Promise<Uint8Array | undefined> {
    return this.backend.get<Uint8Array>(runCheckpointKey(id));
  }

  async rename(id: string, name: string): Promise<RunRecord> {
    const trimmed = name.trim();
    if (!trimmed) throw new Error('A run needs a name.');
    const record = await this.get(id);
    const next = { ...record, name: trimmed };
    await this.write(runKey(id), stored(next), `the new name of "${record.name}"`);
    return next;
  }

  /** Deletes a run and its checkpoint (also an entry that does not read). */
  async delete(id: string): Promise<void> {
    await this.backend.delete(runCheckpointKey(id));
    await this.backend.delete(runLogKey(id));
    await this.backend.delete(runKey(id));
  }

  /** Frees a run's checkpoint and keeps the rest of it (curves, evaluations, config): it can no longer be resumed. */
  async dropCheckpoint(id: string): Promise<RunRecord> {
    const record = await this.get(id);
    await this.backend.delete(runCheckpointKey(id));
    const next = { ...record, checkpoint: null };
    await this.write(runKey(id), stored(next), `the run "${record.name}"`);
    return next;
  }

  /** Removes a stored entry that does not read (by key, as `list` named it). */
  async discard(key: string): Promise<void> {
    if (!key.startsWith(RUN_PREFIX)) throw new Error(`${key} is not a run entry.`);
    await this.delete(key.slice(RUN_PREFIX.length));
  }

  /** Adds a run from a file under a new id (so an import never overwrites a run), with its checkpoint when it has one. */
  async import(record: RunRecord, checkpoint: Uint8Array | undefined, id: string): Promise<RunRecord> {
    const next: RunRecord = { ...record, id, checkpoint: checkpoint ? (record.checkpoint ?? { step: record.steps, savedAt: record.updatedAt, bytes: checkpoint.byteLength }) : null };
    await this.save(next, checkpoint);
    return next;
  }
}

/** The record as stored under run:<id>: its log is kept apart (run-log:<id>), its length here. */
function stored(record: RunRecord): RunRecord & { logRows: number } {
  return { ...record, log: [], logRows: record.log.length };
}
