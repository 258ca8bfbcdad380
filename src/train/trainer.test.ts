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
