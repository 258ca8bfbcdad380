/**
 * Every registered distillation method, and the GFL detection loss, on WebGPU (Dawn on
 * SwiftShader in Node) against the cpu backend: loss, terms, panel maps and the gradients with
 * respect to the student inputs agree to 1e-4 relative. Tiny tensors (SwiftShader is a CPU):
 * one image, levels 4x4 and 2x2, 8 teacher / 6 student channels, 3 classes, regMax 3. Maps are
 * read through `deferMapReads` (Dawn in Node has no synchronous read).
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeAnchorGrid } from '../detect/anchors';
import type { GtObject } from '../detect/assignment';
import { gflLoss } from '../detect/gfl-loss';
import { registerNodeWebGpu } from '../testing/node-webgpu';
import { fgd } from './fgd';
import { createGcBlock } from './gc-block';
import { vlrWeights } from './ld';
import { joinLevelsByDefault } from './levels';
import { deferMapReads } from './readback';
import { createMethod, METHODS, type DistillInputs, type MethodId } from './registry';
import { handAssignment } from './test-support';

const INPUT = 32;
const grid = makeAnchorGrid(INPUT, [8, 16], 5);
// Two objects (classes 0 and 2 of 3). Anchor boxes (side 5·stride) are larger than this tiny
// image, so ATSS would find few positives: the positives are set by hand, on both levels
// (anchors 0..15 are the 4x4 level, 16..19 the 2x2 one); IoUs are the real anchor-box IoUs.
const gts: GtObject[] = [
  { box: [2, 3, 20, 22], classIndex: 0 },
  { box: [12, 10, 31, 30], classIndex: 2 },
];
const assignedGt = Array.from({ length: grid.count }, (_, i) => ([5, 6, 9, 16].includes(i) ? 0 : [10, 11, 15, 19].includes(i) ? 1 : -1));
const assignment = handAssignment({ grid, gts, assignedGt, ious: gts.map((g) => anchorIous(g.box)), thresholds: [0.3, 0.3] });

function anchorIous(b: readonly number[]): number[] {
  const [bx1 = 0, by1 = 0, bx2 = 0, by2 = 0] = b;
  return Array.from({ length: grid.count }, (_, i) => {
    const [x1 = 0, y1 = 0, x2 = 0, y2 = 0] = grid.boxes.subarray(4 * i, 4 * i + 4);
    const inter = Math.max(0, Math.min(x2, bx2) - Math.max(x1, bx1)) * Math.max(0, Math.min(y2, by2) - Math.max(y1, by1));
    return inter / ((x2 - x1) * (y2 - y1) + (bx2 - bx1) * (by2 - by1) - inter);
  });
}
const SIDES = grid.levels.map((l) => l.height);
const CLASSES = 3;
const BINS = 4; // regMax 3

/** Deterministic values for tensor `seed` of a given size. */
const wave = (size: number, seed: number, scale = 1) => Array.from({ length: size }, (_, i) => scale * Math.sin(i * 0.37 + seed * 1.3));

function perLevel(channels: number, seed: number, scale = 1): tf.Tensor4D[] {
  return SIDES.map((s, l) => tf.tensor4d(wave(s * s * channels, seed + 10 * l, scale), [1, s, s, channels]));
}

interface Readout {
  backend: string;
  loss: number;
  terms: Record<string, number>;
  maps: Record<string, number[]>;
  grads: Record<string, number[]>;
}

/** Runs one method on the current backend; plain numbers come back. */
async function runMethod(id: MethodId): Promise<Readout> {
  const teacher = { stage: perLevel(8, 9), neck: perLevel(8, 1), head: perLevel(8, 2), cls: perLevel(CLASSES, 3, 2), box: perLevel(4 * BINS, 4, 2) };
  const student = {
    stage: perLevel(6, 10).map((t, l) => tf.variable(t, true, `wgpu_${id}_stage_${l}`)),
    neck: perLevel(6, 5).map((t, l) => tf.variable(t, true, `wgpu_${id}_neck_${l}`)),
    head: perLevel(6, 6).map((t, l) => tf.variable(t, true, `wgpu_${id}_head_${l}`)),
    cls: perLevel(CLASSES, 7, 2).map((t, l) => tf.variable(t, true, `wgpu_${id}_cls_${l}`)),
    box: perLevel(4 * BINS, 8, 2).map((t, l) => tf.variable(t, true, `wgpu_${id}_box_${l}`)),
  };
  const as4d = (v: tf.Variable[]) => v as unknown as tf.Tensor4D[];
  const inputs: DistillInputs = {
    stageT: teacher.stage,
    stageS: as4d(student.stage),
    neckT: teacher.neck,
    neckS: as4d(student.neck),
    headT: teacher.head,
    headS: as4d(student.head),
    clsT: teacher.cls,
    clsS: as4d(student.cls),
    boxT: teacher.box,
    boxS: as4d(student.box),
    assignments: [assignment],
  };
  const channels = { stage: { teacher: [8, 8], student: [6, 6] }, neck: { teacher: [8, 8], student: [6, 6] }, headFeature: { teacher: [8, 8], student: [6, 6] }, seed: 3 };
  // Non-default switches where a method has them, so more of its code runs.
  const params: Partial<Record<MethodId, object>> = { ld: { classKd: true }, fgfi: { adapterRelu: false } };
  const method = createMethod(id, { channels, params: params[id] as never });

  // Synchronous reads are not available on Dawn in Node: maps are read asynchronously.
  const result = await deferMapReads(() => method.run(inputs, true));
  const readout: Readout = { backend: tf.getBackend(), loss: (await result.loss.data())[0] ?? NaN, terms: {}, maps: {}, grads: {} };
  for (const [k, t] of Object.entries(result.terms)) readout.terms[k] = (await t.data())[0] ?? NaN;
  for (const m of result.maps ?? []) {
    const key = m.kind === 'distribution' ? `${m.name}/${m.image}/${m.gt}` : `${m.name}/${m.level ?? ''}`;
    readout.maps[key] = Array.from(m.data);
  }
  for (const t of new Set([result.loss, ...Object.values(result.terms)])) t.dispose();

  const watched = [...student.stage, ...student.neck, ...student.head, ...student.cls, ...student.box];
  const { value, grads } = tf.variableGrads(() => method.run(inputs).loss, watched);
  for (const v of watched) {
    const g = grads[v.name];
    if (g) readout.grads[v.name.replace(`wgpu_${id}_`, '')] = Array.from(await g.data());
  }
  tf.dispose([value, ...Object.values(grads), ...watched, ...teacher.stage, ...teacher.neck, ...teacher.head, ...teacher.cls, ...teacher.box]);
  method.dispose();
  return readout;
}

async function on<T>(backend: string, f: () => Promise<T>): Promise<T> {
  if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} did not start`);
  return f();
}

/** max |a − b| over max(|b|, floor): relative to the reference's scale. */
function relDiff(a: readonly number[], b: readonly number[], floor = 1e-6): number {
  expect(a.length).toBe(b.length);
  let diff = 0;
  let scale = floor;
  b.forEach((v, i) => {
    diff = Math.max(diff, Math.abs((a[i] ?? NaN) - v));
    scale = Math.max(scale, Math.abs(v));
  });
  return Number.isNaN(diff) ? Infinity : diff / scale;
}

function expectClose(gpu: Readout, cpu: Readout, id: string): void {
  expect([gpu.backend, cpu.backend]).toEqual(['webgpu', 'cpu']);
  expect(relDiff([gpu.loss], [cpu.loss]), `${id} loss`).toBeLessThan(1e-4);
  expect(Object.keys(gpu.terms).sort()).toEqual(Object.keys(cpu.terms).sort());
  for (const [k, v] of Object.entries(cpu.terms)) expect(relDiff([gpu.terms[k] ?? NaN], [v]), `${id} term ${k}`).toBeLessThan(1e-4);
  expect(Object.keys(gpu.maps).sort()).toEqual(Object.keys(cpu.maps).sort());
  for (const [k, v] of Object.entries(cpu.maps)) expect(relDiff(gpu.maps[k] ?? [], v), `${id} map ${k}`).toBeLessThan(1e-4);
  expect(Object.keys(gpu.grads).sort()).toEqual(Object.keys(cpu.grads).sort());
  for (const [k, v] of Object.entries(cpu.grads)) expect(relDiff(gpu.grads[k] ?? [], v), `${id} gradient ${k}`).toBeLessThan(1e-4);
}

describe('distillation methods on WebGPU (Node, SwiftShader) against the cpu backend', () => {
  beforeAll(async () => {
    await registerNodeWebGpu();
  }, 120_000);

  it('the tiny case has positives on both levels and a VLR', () => {
    expect(assignment.positives.map((p) => Array.from(p))).toEqual([
      [5, 6, 9, 16],
      [10, 11, 15, 19],
    ]);
    expect(vlrWeights(assignment, 0.25, 'iou').filter((v) => v > 0).length).toBeGreaterThan(0);
  });

  it('FGD takes its joined path on WebGPU and each level as one op on cpu, so its row below compares the two', async () => {
    expect(await on('webgpu', async () => joinLevelsByDefault())).toBe(true);
    expect(await on('cpu', async () => joinLevelsByDefault())).toBe(false);
  });

  for (const { id } of METHODS) {
    it(`${id}: loss, terms, maps and student gradients agree`, async () => {
      const gpu = await on('webgpu', () => runMethod(id));
      const cpu = await on('cpu', () => runMethod(id));
      expect(Object.keys(cpu.grads).length, `${id} reaches the student`).toBeGreaterThan(0);
      expect(cpu.loss).toBeGreaterThan(0);
      // Every method draws panels, some of them non-zero (so a failed read cannot pass as equal).
      expect(Object.values(cpu.maps).some((m) => m.some((x) => x !== 0)), `${id} maps`).toBe(true);
      expectClose(gpu, cpu, id);
    }, 300_000);
  }

  it('FGD with each level as one op (its path where levels cannot be joined) agrees with the op-by-op loss on cpu', async () => {
    const run = (fused: boolean) => async () => {
      const teacher = perLevel(8, 1);
      const student = perLevel(8, 5).map((t, l) => tf.variable(t, true, `wgpu_fgd_fused_${fused}_${l}`));
      const connectors = SIDES.map((_, l) => ({ gcS: createGcBlock({ channels: 8, seed: 40 + l }), gcT: createGcBlock({ channels: 8, seed: 50 + l }) }));
      // W2 away from zero, so the GcBlocks' transforms reach the loss.
      for (const c of connectors) for (const gc of [c.gcS, c.gcT]) gc.variables[6]?.assign(tf.tensor2d(wave(32, 6), [4, 8]));
      const { value, grads } = tf.variableGrads(() => {
        const r = fgd({ featT: teacher, featS: student as unknown as tf.Tensor4D[], gtBoxes: [gts.map((g) => g.box)], inputSize: INPUT, connectors }, {}, { joined: false, fused });
        tf.dispose(Object.values(r.terms));
        return r.loss;
      }, student);
      const out: Readout = { backend: tf.getBackend(), loss: (await value.data())[0] ?? NaN, terms: {}, maps: {}, grads: {} };
      for (const v of student) out.grads[v.name.replace(/^wgpu_fgd_fused_(true|false)_/, '')] = Array.from(await (grads[v.name] as tf.Tensor).data());
      tf.dispose([value, ...Object.values(grads), ...teacher, ...student]);
      for (const c of connectors) [c.gcS, c.gcT].forEach((b) => b.dispose());
      return out;
    };
    const gpu = await on('webgpu', run(true));
    const cpu = await on('cpu', run(false));
    expect(Object.keys(cpu.grads)).toHaveLength(2);
    expectClose(gpu, cpu, 'fgd fused');
  }, 300_000);

  it('GFL detection loss: loss, terms and gradient agree', async () => {
    const run = async () => {
      const channels = CLASSES + 4 * BINS;
      const outputs = SIDES.map((s, l) => tf.variable(tf.tensor4d(wave(s * s * channels, 20 + l, 2), [1, s, s, channels]), true, `wgpu_gfl_${l}`));
      const { value, grads } = tf.variableGrads(() => {
        const r = gflLoss({ outputs, assignments: [assignment], grid, regMax: BINS - 1 });
        tf.dispose(Object.values(r.terms));
        return r.loss;
      }, outputs);
      const r = gflLoss({ outputs, assignments: [assignment], grid, regMax: BINS - 1 });
      const out: Readout = { backend: tf.getBackend(), loss: (await value.data())[0] ?? NaN, terms: {}, maps: {}, grads: {} };
      for (const [k, t] of Object.entries(r.terms)) out.terms[k] = (await t.data())[0] ?? NaN;
      for (const v of outputs) out.grads[v.name.replace(/^wgpu_/, '')] = Array.from(await (grads[v.name] as tf.Tensor).data());
      tf.dispose([value, r.loss, ...Object.values(r.terms), ...Object.values(grads), ...outputs]);
      return out;
    };
    const gpu = await on('webgpu', run);
    const cpu = await on('cpu', run);
    expect(cpu.terms['giou']).toBeGreaterThan(0);
    expectClose(gpu, cpu, 'gfl');
  }, 300_000);
});
