/**
 * FGD with each level as one op (fgd-fused.ts) on the wasm backend, where its student gradient
 * is one elementwise program and its sums over positions are average pools, against tfjs's
 * autodiff of the level-by-level loss on the cpu backend.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { conv1x1Connector } from './connectors';
import { fgd, type FgdLevelConnectors } from './fgd';
import { createGcBlock } from './gc-block';
import { expectSameLossTermsAndGradients } from './test-support';

const SIDES = [8, 4, 2];
const BOXES: [number, number, number, number][][] = [[[2, 3, 20, 22]], [[12, 10, 31, 30], [0, 0, 5, 6]]];
const wave = (size: number, seed: number) => Float32Array.from({ length: size }, (_, i) => Math.sin(i * 0.37 + seed * 1.3) + 0.3 * Math.cos(i * 0.11 * seed));

interface Readout {
  loss: number;
  terms: Record<string, number>;
  grads: Record<string, Float32Array>;
  kernels: string[];
}

/** Teacher 6 channels; student level 1 has 4 (aligned by a 1x1 conv). The same weights on every backend. */
async function run(backend: string, path: 'fused' | 'levels'): Promise<Readout> {
  expect(await tf.setBackend(backend)).toBe(true);
  const teacher = SIDES.map((s, l) => tf.tensor4d(wave(2 * s * s * 6, l + 1), [2, s, s, 6]));
  const student = SIDES.map((s, l) => tf.variable(tf.tensor4d(wave(2 * s * s * (l === 1 ? 4 : 6), l + 7), [2, s, s, l === 1 ? 4 : 6]), true, `fgd_wasm_${path}_${backend}_s${l}`));
  const connectors = SIDES.map((_, l): FgdLevelConnectors => ({
    gcS: createGcBlock({ name: `fgd_wasm_gcs_${l}`, channels: 6, seed: 40 + l }),
    gcT: createGcBlock({ name: `fgd_wasm_gct_${l}`, channels: 6, seed: 50 + l }),
    align: l === 1 ? conv1x1Connector(4, 6, { init: 'uniform', seed: 2 }) : null,
  }));
  // W2 away from zero, so every GcBlock weight reaches the loss.
  for (const c of connectors) for (const gc of [c.gcS, c.gcT]) gc?.variables[6]?.assign(tf.tensor2d(wave(18, 3), [3, 6]));
  const watched = [...student, ...connectors.flatMap((c) => [c.align, c.gcS, c.gcT].flatMap((x) => x?.variables ?? []))];
  let terms: Record<string, number> = {};
  const loss = () => {
    const r = fgd({ featT: teacher, featS: student as unknown as tf.Tensor4D[], gtBoxes: BOXES, inputSize: 32, connectors }, {}, { joined: false, fused: path === 'fused' });
    terms = Object.fromEntries(Object.entries(r.terms).map(([k, v]) => [k, v.dataSync()[0] ?? NaN]));
    return r.loss;
  };
  let out: Omit<Readout, 'kernels'> = { loss: NaN, terms: {}, grads: {} };
  const profile = await tf.profile(() => {
    const { value, grads } = tf.variableGrads(loss, watched);
    // Names without what differs between the runs (the student's prefix, the connectors' counters).
    const named = Object.entries(grads).map(([k, g]) => [k.replace(/^fgd_wasm_(fused|levels)_(cpu|wasm)_/, '').replace(/^(distill\/.*)_\d+$/, '$1'), g.dataSync() as Float32Array] as const);
    out = { loss: value.dataSync()[0] ?? NaN, terms, grads: Object.fromEntries(named) };
    tf.dispose([value, ...Object.values(grads)]);
  });
  tf.dispose([...teacher, ...student]);
  for (const c of connectors) [c.align, c.gcS, c.gcT].forEach((x) => x?.dispose());
  return { ...out, kernels: profile.kernels.map((k) => k.name) };
}

describe('FGD, each level as one op, on wasm', () => {
  it('gives the loss, terms and gradients of the level-by-level autodiff on cpu', async () => {
    const wasm = await run('wasm', 'fused');
    const cpu = await run('cpu', 'levels');
    // The wasm path ran: the student's gradient as one elementwise program.
    expect(wasm.kernels).toContain('LabElementwise');
    expect(cpu.kernels).not.toContain('LabElementwise');
    expect(Object.keys(cpu.grads)).toHaveLength(3 + 2 + 48);
    expectSameLossTermsAndGradients(wasm, cpu);
  }, 60_000);
});
