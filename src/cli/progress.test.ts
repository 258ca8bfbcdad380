import { describe, expect, it } from 'vitest';
import { formatDuration, progressLine } from './progress';

describe('progress', () => {
  it('formats durations', () => {
    expect(formatDuration(59.4)).toBe('00:59');
    expect(formatDuration(3725)).toBe('1:02:05');
    expect(formatDuration(NaN)).toBe('--:--');
  });
  it('draws the bar, the counts and the time left', () => {
    const line = progressLine(
      { type: 'step', step: 12, epoch: 1, totalSteps: 40, stepsPerEpoch: 10, lr: 1e-4, loss: 1.2345, terms: {}, numPositives: 3, pseudoBoxes: 0, gradNorm: 1, applied: true, nonFiniteTerms: [], msPerStep: 2100, imagesPerSecond: 1.9, etaSeconds: 59, imageIds: [] },
      10,
    );
    expect(line).toBe('[###.......] 12/40 epoch 2/4 loss 1.234 · 2.10 s/step · 1.9 img/s · 00:59 left');
  });
  it('says how much of the teacher came from its cache', () => {
    const teacherCache = { hits: 30, misses: 10, entries: 10, bytes: 12.4 * 2 ** 20, budgetBytes: 512 * 2 ** 20, tensors: 120 };
    const line = progressLine(
      { type: 'step', step: 10, epoch: 3, totalSteps: 10, stepsPerEpoch: 2, lr: 1e-4, loss: 1, terms: {}, numPositives: 3, pseudoBoxes: 0, gradNorm: 1, applied: true, nonFiniteTerms: [], msPerStep: 1000, imagesPerSecond: 4, etaSeconds: 0, imageIds: [], teacherCache },
      10,
    );
    expect(line).toBe('[##########] 10/10 epoch 4/5 loss 1.000 · 1.00 s/step · 4.0 img/s · 00:00 left · teacher cached 75% (10 images, 12 MiB)');
  });
});
