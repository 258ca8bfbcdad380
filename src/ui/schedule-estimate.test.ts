import { describe, expect, it } from 'vitest';
import { estimateRun, planRun } from './schedule-estimate';

describe('the schedule before Train', () => {
  it('counts steps as the trainer does: whole batches per epoch, photos included', () => {
    // 20 annotated images limited to 6, batch 4: 1 step per epoch (the rest of a batch is dropped), 3 epochs.
    expect(planRun({ trainImages: 20, maxTrainImages: 6, photos: 0, batchSize: 4, epochs: 3 })).toEqual({ images: 6, perEpoch: 1, totalSteps: 3 });
    // All 20 plus 160 photos capped at 40: 60 images, batch 4 → 15 steps × 2 epochs.
    expect(planRun({ trainImages: 20, maxTrainImages: 0, photos: 160, maxUnlabeled: 40, batchSize: 4, epochs: 2 })).toEqual({ images: 60, perEpoch: 15, totalSteps: 30 });
    // Two annotated images in every batch: an epoch is one pass over the 160 photos, two at a time.
    expect(planRun({ trainImages: 20, photos: 160, batchSize: 4, epochs: 2, annotatedPerBatch: 2 })).toEqual({ images: 180, perEpoch: 80, totalSteps: 160, mixed: { photos: 160, annotatedPerBatch: 2 } });
    // No annotated images (photos alone) or no room beside them: counted as before.
    expect(planRun({ trainImages: 0, photos: 160, batchSize: 4, epochs: 1, annotatedPerBatch: 2 })).toEqual({ images: 160, perEpoch: 40, totalSteps: 40 });
    // A fixed step count overrides the epochs (the repair recipe's 360), but not a data set smaller than a batch.
    expect(planRun({ trainImages: 20, photos: 160, batchSize: 4, epochs: 12, steps: 360, annotatedPerBatch: 2 })).toEqual({ images: 180, perEpoch: 80, totalSteps: 360, mixed: { photos: 160, annotatedPerBatch: 2 }, fixedSteps: true });
    expect(planRun({ trainImages: 20, photos: 0, batchSize: 4, epochs: 2, steps: 0 })).toEqual({ images: 20, perEpoch: 5, totalSteps: 10 });
    expect(planRun({ trainImages: 2, photos: 0, batchSize: 4, epochs: 2, steps: 360 })).toEqual({ images: 2, perEpoch: 0, totalSteps: 0 });
    expect(planRun({ trainImages: 20, photos: 160, batchSize: 2, epochs: 1, annotatedPerBatch: 2 })).toEqual({ images: 180, perEpoch: 90, totalSteps: 90 });
    // Fewer images than a batch: no step.
    expect(planRun({ trainImages: 3, photos: 0, batchSize: 4, epochs: 5 }).totalSteps).toBe(0);
  });

  it('uses the last run on this page at the same batch and size', () => {
    const e = estimateRun({
      totalSteps: 30,
      batchSize: 1,
      inputSize: 64,
      student: { macs: 1.764e9, inputSize: 416 },
      teacher: { macs: 2.09e9, inputSize: 416 },
      backend: 'wasm',
      software: false,
      measured: { msPerStep: 600, batchSize: 1, inputSize: 64 },
    });
    expect(e).toEqual({ seconds: 18, basis: 'measured' });
  });

  it('guesses from the MACs otherwise', () => {
    // Per image at 320: (3 × 1.764 G + 2.09 G) × (320/416)² = 4.366 G; batch 4 at 2.5 GMAC/s = 6.99 s + 0.4 s per step.
    const e = estimateRun({
      totalSteps: 10,
      batchSize: 4,
      inputSize: 320,
      student: { macs: 1.764e9, inputSize: 416 },
      teacher: { macs: 2.09e9, inputSize: 416 },
      backend: 'wasm',
      software: false,
      measured: { msPerStep: 600, batchSize: 1, inputSize: 64 },
    });
    expect(e.basis).toBe('rough');
    expect(e.seconds).toBeCloseTo(73.9, 0);
  });
});
