/**
 * A checkpoint is everything needed to continue a run exactly: the config, the step, the
 * student's weights, the methods' connector weights and the optimizer's state, as plain typed
 * arrays (structured-clonable for IndexedDB, and packable into one file for the command line).
 */
import * as tf from '@tensorflow/tfjs';
import { stableVariableKey } from '../distill/connectors';
import type { ExperimentConfig } from './config';
import type { Optimizer, OptimizerState } from './optimizer';
import type { DistillSession } from './session';

export interface SavedTensor {
  shape: number[];
  values: Float32Array;
}

export interface Checkpoint {
  checkpointVersion: 1;
  config: ExperimentConfig;
  /** Steps completed. */
  step: number;
  savedAt: string;
  /** By variable name. */
  student: Record<string, SavedTensor>;
  connectors: Record<string, SavedTensor>;
  optimizer: OptimizerState;
}

async function save(vars: readonly tf.Variable[]): Promise<Record<string, SavedTensor>> {
  const out: Record<string, SavedTensor> = {};
  for (const v of vars) out[stableVariableKey(v.name)] = { shape: [...v.shape], values: (await v.data()) as Float32Array };
  return out;
}

export async function captureCheckpoint(session: DistillSession, optimizer: Optimizer, step: number, config: ExperimentConfig): Promise<Checkpoint> {
  return {
    checkpointVersion: 1,
    config,
    step,
    savedAt: new Date().toISOString(),
    student: await save([...session.student.graph.variables.values()]),
    connectors: await save(session.methods.flatMap((m) => m.variables)),
    optimizer: await optimizer.state(),
  };
}

/** Puts a checkpoint's values back into a session built from the same config. */
export function restoreCheckpoint(session: DistillSession, optimizer: Optimizer, checkpoint: Checkpoint): void {
  const assign = (vars: readonly tf.Variable[], saved: Record<string, SavedTensor>, what: string) => {
    // Connector weights are matched without the counter that keeps engine names unique.
    const key = (v: tf.Variable) => stableVariableKey(v.name);
    const missing = vars.filter((v) => !saved[key(v)]).map((v) => key(v));
    if (missing.length) throw new Error(`The checkpoint has no values for ${missing.length} ${what} weight(s) (e.g. ${missing[0]}): it was saved for another model or method set.`);
    for (const v of vars) {
      const s = saved[key(v)]!;
      if (s.shape.join() !== v.shape.join()) throw new Error(`Checkpoint weight ${v.name} has shape [${s.shape}], the model has [${v.shape}].`);
      const value = tf.tensor(s.values, s.shape, 'float32');
      v.assign(value);
      value.dispose();
    }
  };
  assign([...session.student.graph.variables.values()], checkpoint.student, 'student');
  assign(session.methods.flatMap((m) => m.variables), checkpoint.connectors, 'connector');
  optimizer.load(checkpoint.optimizer);
}

/**
 * One file for a checkpoint: a little-endian u32 header length, a JSON header (everything but the
 * arrays, with each array's offset and length), then the float32 data.
 */
export function packCheckpoint(c: Checkpoint): Uint8Array {
  const arrays: Float32Array[] = [];
  let offset = 0;
  const ref = (t: SavedTensor) => {
    arrays.push(t.values);
    const r = { shape: t.shape, offset, length: t.values.length };
    offset += t.values.length;
    return r;
  };
  const refs = (m: Record<string, SavedTensor>) => Object.fromEntries(Object.entries(m).map(([k, t]) => [k, ref(t)]));
  const header = {
    ...c,
    student: refs(c.student),
    connectors: refs(c.connectors),
    optimizer: { ...c.optimizer, slots: Object.fromEntries(Object.entries(c.optimizer.slots).map(([k, list]) => [k, list.map(ref)])) },
  };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerBytes = 4 + json.length;
  const pad = (4 - (headerBytes % 4)) % 4;
  const out = new Uint8Array(headerBytes + pad + offset * 4);
  new DataView(out.buffer).setUint32(0, json.length + pad, true);
  out.set(json, 4);
  out.fill(0x20, 4 + json.length, headerBytes + pad); // spaces keep the JSON valid
  const data = new Float32Array(out.buffer, headerBytes + pad, offset);
  let at = 0;
  for (const a of arrays) {
    data.set(a, at);
    at += a.length;
  }
  return out;
}

export function unpackCheckpoint(bytes: Uint8Array): Checkpoint {
  if (bytes.byteLength < 8) throw new Error('This is not a Distill Lab checkpoint (too short).');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const jsonLength = view.getUint32(0, true);
  if (4 + jsonLength > bytes.byteLength) throw new Error('This is not a Distill Lab checkpoint (bad header).');
  type Ref = { shape: number[]; offset: number; length: number };
  let header: Omit<Checkpoint, 'student' | 'connectors' | 'optimizer'> & {
    student: Record<string, Ref>;
    connectors: Record<string, Ref>;
    optimizer: Omit<OptimizerState, 'slots'> & { slots: Record<string, Ref[]> };
  };
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + jsonLength)));
  } catch (error) {
    throw new Error('This is not a Distill Lab checkpoint (unreadable header).', { cause: error });
  }
  if (header.checkpointVersion !== 1) throw new Error(`Unsupported checkpoint version ${String(header.checkpointVersion)}.`);
  const start = bytes.byteOffset + 4 + jsonLength;
  const copy = bytes.buffer.slice(start, bytes.byteOffset + bytes.byteLength);
  const data = new Float32Array(copy);
  const take = (r: Ref): SavedTensor => {
    if (r.offset + r.length > data.length) throw new Error('The checkpoint file is truncated.');
    return { shape: r.shape, values: data.slice(r.offset, r.offset + r.length) };
  };
  const takeAll = (m: Record<string, Ref>) => Object.fromEntries(Object.entries(m).map(([k, r]) => [k, take(r)]));
  return {
    ...header,
    student: takeAll(header.student),
    connectors: takeAll(header.connectors),
    optimizer: { ...header.optimizer, slots: Object.fromEntries(Object.entries(header.optimizer.slots).map(([k, list]) => [k, list.map(take)])) },
  };
}
