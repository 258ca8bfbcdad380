import { describe, expect, it } from 'vitest';
import type { LabExperiment, LabInspection } from '../worker/lab';
import { inspectionSource, staleReasons } from './inspect-stale';

const result = {
  imageId: '2007_000061',
  split: 'train',
  studentStep: 3,
  inputSize: 64,
  ldObject: 0,
  scoreThreshold: 0.05,
  objects: [{}, {}],
  methods: [{ id: 'fgd' }, { id: 'ld' }],
} as unknown as LabInspection;
const config = { methods: [{ id: 'ld' }, { id: 'fgd' }], schedule: { inputSize: 64 } } as unknown as LabExperiment;
const same = { split: 'train' as const, imageId: '2007_000061', ldObject: 0, scoreThreshold: 0.05, weightsChanged: null };

describe('inspection freshness', () => {
  it('is current when nothing changed (method order does not matter)', () => {
    expect(staleReasons(result, same, config)).toEqual([]);
  });
  it('names every change since the maps were made', () => {
    const reasons = staleReasons(
      result,
      { split: 'val', imageId: '2007_000027', ldObject: 1, scoreThreshold: 0.3, weightsChanged: 'the student has trained since (now step 5)' },
      { methods: [{ id: 'fgd' }], schedule: { inputSize: 128 } } as unknown as LabExperiment,
    );
    expect(reasons).toEqual([
      '2007_000027 (val) is selected now',
      'LD object 1 is chosen now',
      'boxes are asked from score 0.30 now',
      'the chosen methods or their parameters changed',
      'the input size is 128 now',
      'the student has trained since (now step 5)',
    ]);
  });
  it('captions a map set with its image, split, size and step', () => {
    expect(inspectionSource(result)).toBe('2007_000061 (train) · 64² · student at step 3');
    expect(inspectionSource({ ...result, studentStep: 0 })).toBe('2007_000061 (train) · 64² · student as loaded (step 0)');
  });
});
