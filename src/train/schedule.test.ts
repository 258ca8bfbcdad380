import { describe, expect, it } from 'vitest';
import { learningRateAt } from './schedule';

describe('learningRateAt', () => {
  const s = { lr: 0.01, totalSteps: 110, warmupSteps: 10, warmupRatio: 0.1, minRatio: 0.05 };
  it('warms up linearly from warmupRatio·lr', () => {
    expect(learningRateAt(0, s)).toBeCloseTo(0.001, 12);
    expect(learningRateAt(5, s)).toBeCloseTo(0.0055, 12); // 0.01·(0.1 + 0.9·0.5)
  });
  it('decays along a cosine to minRatio·lr', () => {
    expect(learningRateAt(10, s)).toBeCloseTo(0.01, 12);
    expect(learningRateAt(60, s)).toBeCloseTo(0.01 * (0.05 + 0.95 * 0.5), 12); // half-way: cos = 0
    expect(learningRateAt(110, s)).toBeCloseTo(0.0005, 12);
    expect(learningRateAt(500, s)).toBeCloseTo(0.0005, 12);
  });
});
