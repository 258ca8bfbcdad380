import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { analyzeChannels } from './channels';
import { graphOf, graphParts } from './test-graph';
import { MomentAccumulator, solveRidge } from './least-squares';
import { residual } from './refit';
import { channelKey, readerState, readerStates, removalCost, removeColumns, selectChannels } from './select';

/**
 * Three input channels: a, a copy of a with a little noise, and a weaker independent b. The
 * reader sums all three. Energy keeps the two copies of a (the strongest two); the refit can
 * rebuild the copy from a, and nothing can rebuild b.
 */
function redundantCase() {
  const rows = 400;
  const x = new Float64Array(rows * 3);
  const y = new Float64Array(rows);
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  for (let r = 0; r < rows; r++) {
    const a = 2 * rand();
    const copy = a + 0.05 * rand();
    const b = 0.7 * rand();
    x.set([a, copy, b], r * 3);
    y[r] = a + copy + b;
  }
  const cov = new Float64Array(9);
  const mean = [0, 1, 2].map((i) => Array.from({ length: rows }, (_, r) => x[r * 3 + i]!).reduce((s, v) => s + v, 0) / rows);
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) for (let r = 0; r < rows; r++) cov[i * 3 + j]! += ((x[r * 3 + i]! - mean[i]!) * (x[r * 3 + j]! - mean[j]!)) / rows;
  return { x, y, rows, cov, filter: [1, 1, 1] };
}

/** The refit error (relative to the output's variance) from the kept input columns alone. */
function refitError(x: Float64Array, y: Float64Array, rows: number, kept: number[]): number {
  const acc = new MomentAccumulator(kept.length, 1);
  acc.addRows(
    Float64Array.from({ length: rows * kept.length }, (_, i) => x[Math.floor(i / kept.length) * 3 + kept[i % kept.length]!]!),
    y,
  );
  const fit = solveRidge(acc, { ridge: 1e-9 });
  const meanY = y.reduce((s, v) => s + v, 0) / rows;
  const variance = y.reduce((s, v) => s + (v - meanY) ** 2, 0);
  return residual(acc, fit, y.reduce((s, v) => s + v * v, 0)) / variance;
}

describe('refit-aware channel selection', () => {
  it('computes the rise of the refit error from the covariance alone', () => {
    const { x, y, rows, cov, filter } = redundantCase();
    const groups = new Map([0, 1, 2].map((c) => [channelKey('u', c), [c]]));
    for (const dropped of [0, 1, 2]) {
      const state = readerState('r', cov, filter, 3, 1, 1e-9, groups);
      const kept = [0, 1, 2].filter((c) => c !== dropped);
      // The exact error of the refit without that channel; with all three, the fit is exact.
      expect(removalCost(state, [dropped])).toBeCloseTo(refitError(x, y, rows, kept), 6);
    }
    // Dropping the copy costs almost nothing, dropping b costs all of its share of the variance.
    const state = readerState('r', cov, filter, 3, 1, 1e-9, groups);
    expect(removalCost(state, [1])).toBeLessThan(1e-3);
    expect(removalCost(state, [2])).toBeGreaterThan(0.02);
  });

  it('downdates: after one removal, the next costs match a fit from the remaining columns', () => {
    const { x, y, rows, cov, filter } = redundantCase();
    const state = readerState('r', cov, filter, 3, 1, 1e-9, new Map());
    removeColumns(state, [0]);
    // Without a, dropping b leaves the copy alone: error = refit from {copy} − refit from {copy, b}.
    expect(removalCost(state, [2])).toBeCloseTo(refitError(x, y, rows, [1]) - refitError(x, y, rows, [1, 2]), 6);
    expect(Array.from(state.precision.slice(0, 3))).toEqual([0, 0, 0]);
  });

  it('keeps the unique weak channel and one copy of the strong one, where energy keeps both copies', () => {
    const { x, y, rows, cov, filter } = redundantCase();
    const groups = new Map([0, 1, 2].map((c) => [channelKey('u', c), [c]]));
    const state = readerState('r', cov, filter, 3, 1, 1e-9, groups);
    const keep = selectChannels([{ producer: 'u', channels: 3, consumers: ['r'] }], new Map([['u', 2]]), new Map([['r', state]]));
    const kept = keep.get('u')!;
    expect(kept).toContain(2);
    expect(kept).toHaveLength(2);
    // Energy × filter norm ranks a and its copy first.
    const energy = [0, 1, 2].map((c) => cov[c * 3 + c]!);
    const byEnergy = [0, 1, 2].sort((a, b) => energy[b]! - energy[a]!).slice(0, 2).sort();
    expect(byEnergy).toEqual([0, 1]);
    const refitKept = refitError(x, y, rows, kept);
    expect(refitKept).toBeLessThan(1e-3);
    expect(refitError(x, y, rows, byEnergy)).toBeGreaterThan(50 * refitKept);
  });
});

describe('reader states from a graph', () => {
  it('hold each reader\'s input covariance, its filter per channel and its output variance', async () => {
    await tf.setBackend('wasm');
    const parts = graphParts();
    const g = await graphOf(parts);
    const analysis = analyzeChannels(parts, g.nodeShapes(), g.outputs);
    const batches = [tf.randomNormal([2, 6, 6, 2], 0, 1, 'float32', 5), tf.randomNormal([1, 6, 6, 2], 0, 1, 'float32', 6)] as tf.Tensor4D[];
    const states = await readerStates(parts.topology, g, parts.weights, analysis, ['convB', 'convD'], batches, { ridge: 1e-9 });

    // convD (1x1 over concat(actA, actC)): its 6 input channels, by unit.
    const d = states.get('convD')!;
    expect([d.columns, d.outputs]).toEqual([6, 3]);
    expect(d.groups.get(channelKey('convA', 3))).toEqual([3]);
    expect(d.groups.get(channelKey('convC', 1))).toEqual([5]);
    // The output variance, from the activations themselves: Σ over outputs of var(x W).
    const out = tf.concat(batches.map((b) => g.execute(b, ['convD'])[0]!.reshape([-1, 3])));
    const variance = tf.sum(tf.moments(out, 0).variance).dataSync()[0]!;
    expect(d.variance).toBeCloseTo(variance, 3);
    // With every channel present and a vanishing ridge, β is the filter itself.
    const w = parts.weights['wD']!.dataSync();
    for (let i = 0; i < 18; i++) expect(d.coef[i]!).toBeCloseTo(w[i]!, 3);

    // convB (3x3 over actA): one row per input channel, its nine taps' filters side by side.
    const b = states.get('convB')!;
    expect([b.columns, b.outputs]).toEqual([4, 27]);
    const wB = parts.weights['wB']!.dataSync();
    // Row 2, tap 4 (the centre), output 1 = wB[tap 4, in 2, out 1].
    expect(b.coef[2 * 27 + 4 * 3 + 1]!).toBeCloseTo(wB[(4 * 4 + 2) * 3 + 1]!, 3);
    tf.dispose([...batches, out]);
    g.dispose();
  });
});
