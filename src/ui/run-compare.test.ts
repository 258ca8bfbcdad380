import { describe, expect, it } from 'vitest';
import { METHODS } from '../distill/registry';
import { defaultExperiment } from '../train/config';
import { methodsUsed } from '../provenance/model-card';
import type { RunRecord } from '../provenance/run-record';
import { configDiff, curve, mapCurve, perClassTable, termsOf } from './run-compare';

function run(methods: { id: 'kd' | 'ld'; params?: Record<string, unknown> }[], lr: number, perClass: [string, number | null, number][], mapAll: number): RunRecord {
  const config = defaultExperiment();
  config.methods = methods;
  config.schedule.lr = lr;
  return {
    runFormat: 1,
    id: 'x',
    name: 'x',
    origin: 'lab',
    createdAt: '2026-11-28T08:00:00.000Z',
    updatedAt: '2026-11-28T08:00:00.000Z',
    status: 'finished',
    projectVersion: '0.1.0',
    config,
    methods: methodsUsed(methods, METHODS),
    teacher: { name: 'NanoDet-g', weightsSha256: 'aa' },
    student: { name: 'S', weightsSha256: 'bb', derivation: null },
    data: null,
    backend: 'wasm',
    steps: 2,
    totalSteps: 2,
    log: [
      { step: 1, epoch: 1, lr, loss: 3, terms: { detection: 2, [methods[0]!.id]: 1 }, gradNorm: 1, applied: true, pseudoBoxes: 0, ms: 10 },
      { step: 2, epoch: 1, lr, loss: NaN, terms: { detection: 1.5, [methods[0]!.id]: 0.5 }, gradNorm: 1, applied: false, pseudoBoxes: 0, ms: 10 },
    ],
    evaluations: [
      { target: 'before', step: 0, split: 'val', inputSize: 64, images: 2, mapAll: 0.1, map11: 0.1, cocoAp: 0.05, perClass: [] },
      { target: 'after', step: 2, split: 'val', inputSize: 64, images: 2, mapAll, map11: mapAll, cocoAp: 0.1, perClass: perClass.map(([className, apAll, numGt]) => ({ className, apAll, numGt })) },
    ],
    checkpoint: null,
  };
}

describe('comparing runs', () => {
  const a = run([{ id: 'kd' }], 1e-4, [['bird', 0.5, 1], ['train', 0.25, 2], ['cat', null, 0]], 0.375);
  const b = run([{ id: 'ld', params: { temperature: 5 } }], 1e-3, [['bird', 0.75, 1], ['train', null, 2]], 0.5);

  it('lists only the config facts that differ, every method parameter included', () => {
    const diff = configDiff([a, b]);
    const keys = diff.map((d) => d.key);
    expect(keys).toContain('config.schedule.lr');
    expect(diff.find((d) => d.key === 'config.schedule.lr')!.values).toEqual(['0.0001', '0.001']);
    expect(diff.find((d) => d.key === 'methods[kd].params.temperature')!.values).toEqual(['1', '—']);
    expect(diff.find((d) => d.key === 'methods[ld].params.temperature')!.values).toEqual(['—', '5']);
    expect(diff.find((d) => d.key === 'methods[ld].params.mainWeight')!.values).toEqual(['—', '0.25']);
    expect(keys).not.toContain('backend');
    expect(keys).not.toContain('config.schedule.epochs');
    expect(configDiff([a, a])).toEqual([]);
  });

  it('puts the final AP per class side by side with differences from the first run', () => {
    const t = perClassTable([a, b]);
    expect(t.rows).toEqual([
      { className: 'bird', numGt: 1, ap: [0.5, 0.75], diff: [0, 0.25] },
      { className: 'train', numGt: 2, ap: [0.25, null], diff: [0, null] },
    ]);
    expect(t.map).toEqual([0.375, 0.5]);
    expect(t.mapDiff).toEqual([0, 0.125]);
  });

  it('overlays the terms every run logged, skipping values that are not finite', () => {
    expect(termsOf([a, b])).toEqual(['loss', 'detection', 'kd', 'ld']);
    expect(curve(a, 'loss')).toEqual([[1, 3]]);
    expect(curve(b, 'ld')).toEqual([
      [1, 1],
      [2, 0.5],
    ]);
    expect(curve(a, 'ld')).toEqual([]);
    expect(mapCurve(b)).toEqual([
      [0, 0.1],
      [2, 0.5],
    ]);
  });
});
