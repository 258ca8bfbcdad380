/**
 * Learning-rate schedule: linear warm-up from `warmupRatio · lr` over `warmupSteps`, then cosine
 * decay to `minRatio · lr` at `totalSteps` (NanoDet's recipe shape).
 */
export interface LrSchedule {
  lr: number;
  totalSteps: number;
  warmupSteps: number;
  warmupRatio: number;
  minRatio: number;
}

export function learningRateAt(step: number, s: LrSchedule): number {
  if (s.warmupSteps > 0 && step < s.warmupSteps) {
    const t = step / s.warmupSteps;
    return s.lr * (s.warmupRatio + (1 - s.warmupRatio) * t);
  }
  const span = Math.max(1, s.totalSteps - s.warmupSteps);
  const t = Math.min(1, Math.max(0, (step - s.warmupSteps) / span));
  return s.lr * (s.minRatio + (1 - s.minRatio) * 0.5 * (1 + Math.cos(Math.PI * t)));
}
