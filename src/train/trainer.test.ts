import { describe, expect, it } from 'vitest';
import { stepsPerEpoch } from './trainer';

describe('stepsPerEpoch', () => {
  it('counts full batches of all images, or of the photos when every batch holds annotated images', () => {
    expect(stepsPerEpoch(180, 4)).toBe(45);
    // 160 photos, 3 per batch beside 1 annotated image: 53 full batches.
    expect(stepsPerEpoch(180, 4, { photos: 160, annotatedPerBatch: 1 })).toBe(53);
    // Nothing to mix (no photos, or only photos): all images alike.
    expect(stepsPerEpoch(20, 4, { photos: 0, annotatedPerBatch: 1 })).toBe(5);
    expect(stepsPerEpoch(160, 4, { photos: 160, annotatedPerBatch: 1 })).toBe(40);
    expect(stepsPerEpoch(3, 4)).toBe(1);
  });
});

describe('the repair recipe', () => {
  it('is a valid experiment: hints, KD x5 and LD with the detection loss, two annotated images per batch, AdamW 2e-5, a weight average, 360 steps', async () => {
    const { parseExperiment, repairRecipe } = await import('./config');
    const r = parseExperiment(repairRecipe());
    expect(r.methods).toEqual([{ id: 'hints' }, { id: 'kd', scale: 5 }, { id: 'ld' }]);
    expect(r.detectionWeight).toBe(1);
    expect(r.data.annotatedPerBatch).toBe(2);
    expect(r.schedule).toMatchObject({ optimizer: 'adam', lr: 2e-5, ema: 0.99, batchSize: 4, steps: 360 });
  });

  it('takes random crops in the schedule, and refuses a crop scale outside (0, 1]', async () => {
    const { parseExperiment, repairRecipe } = await import('./config');
    const r = repairRecipe();
    expect(parseExperiment({ ...r, schedule: { ...r.schedule, cropScale: 0.6 } }).schedule.cropScale).toBe(0.6);
    expect(() => parseExperiment({ ...r, schedule: { ...r.schedule, cropScale: 1.5 } })).toThrow('"schedule.cropScale" must lie in (0, 1]');
  });

  it('takes a pruning plan that fades while training, and lists what is wrong with a bad one', async () => {
    const { parseExperiment, defaultExperiment } = await import('./config');
    const c = defaultExperiment();
    expect(parseExperiment({ ...c, prune: { keep: { conv_3: [0, 2] }, fadeSteps: 100 } }).prune).toEqual({ keep: { conv_3: [0, 2] }, fadeSteps: 100 });
    const problems = (prune: unknown) => () => parseExperiment({ ...c, prune });
    expect(problems({ keep: {}, fadeSteps: 0 })).toThrow(/"prune.fadeSteps" must be a positive integer\n- "prune.keep" must map each pruned convolution/);
    expect(problems({ keep: { conv_3: [2, 0] }, fadeSteps: 5 })).toThrow('"prune.keep" of "conv_3" must be a non-empty list of ascending channel indices');
  });
});
