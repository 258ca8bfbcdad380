/**
 * A run as one file: run.json alone (the record; what the command line writes in --out), or a
 * .zip of run.json and checkpoint.dlc (the record and its checkpoint, so the run can be resumed
 * where it is imported).
 */
import { strFromU8, strToU8, unzipSync, zipSync } from 'fflate';
import { parseRunRecord, RUN_CHECKPOINT_FILE, RUN_FILE, type RunRecord } from './run-record';

export function runJson(record: RunRecord): string {
  return `${JSON.stringify(record, null, 2)}\n`;
}

export function runZip(record: RunRecord, checkpoint?: Uint8Array): Uint8Array {
  return zipSync({ [RUN_FILE]: strToU8(runJson(record)), ...(checkpoint ? { [RUN_CHECKPOINT_FILE]: [checkpoint, { level: 0 }] as [Uint8Array, { level: 0 }] } : {}) }, { level: 6 });
}

/** A file name for the run: its name, made safe. */
export function runFileName(record: Pick<RunRecord, 'name'>, ext: 'json' | 'zip'): string {
  const slug = record.name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 60) || 'run';
  return `run-${slug}.${ext}`;
}

/** Reads a run file (.json or .zip); a .zip may hold the checkpoint. Errors name the file. */
export function readRunFile(name: string, bytes: Uint8Array): { record: RunRecord; checkpoint?: Uint8Array } {
  const isZip = bytes[0] === 0x50 && bytes[1] === 0x4b;
  if (!isZip) {
    let value: unknown;
    try {
      value = JSON.parse(strFromU8(bytes));
    } catch (error) {
      throw new Error(`${name} is neither a run .zip nor JSON (${(error as Error).message}).`, { cause: error });
    }
    return { record: parseRunRecord(value, name) };
  }
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(bytes);
  } catch (error) {
    throw new Error(`${name} is not a readable .zip (${(error as Error).message}).`, { cause: error });
  }
  const find = (file: string) => Object.keys(entries).find((p) => p === file || p.endsWith(`/${file}`));
  const json = find(RUN_FILE);
  if (!json) throw new Error(`${name} holds no ${RUN_FILE}: it is not a run exported from the lab or written by the command line.`);
  let value: unknown;
  try {
    value = JSON.parse(strFromU8(entries[json]!));
  } catch (error) {
    throw new Error(`${name}: ${RUN_FILE} is not valid JSON (${(error as Error).message}).`, { cause: error });
  }
  const record = parseRunRecord(value, `${name} (${RUN_FILE})`);
  const ckpt = find(RUN_CHECKPOINT_FILE);
  return ckpt ? { record, checkpoint: entries[ckpt] } : { record };
}
