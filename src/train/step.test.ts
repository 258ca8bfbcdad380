import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeAnchorGrid } from '../detect/anchors';
import { assignAtss } from '../detect/atss';
import { gflLoss } from '../detect/gfl-loss';
import type { TrainingBatch } from '../data/pipeline';
import { detectionImages, detectionLoss } from './step';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('the detection loss of a batch with photos', () => {
  it('trains on the annotated images only, unless pseudo boxes are asked for', () => {
    const batch = { gts: [[], [], []], unlabeled: [false, true, false] } as unknown as TrainingBatch;
    expect(detectionImages(batch, false)).toEqual([0, 2]);
    expect(detectionImages(batch, true)).toEqual([0, 1, 2]);
    expect(detectionImages({ gts: [[], []] } as unknown as TrainingBatch, false)).toEqual([0, 1]);
  });

  it('equals the GFL loss of the picked images alone', () => {
    const grid = makeAnchorGrid(32, [8, 16], 5);
    const regMax = 2;
    const channels = 2 + 4 * (regMax + 1);
    const gts = [[{ box: [4, 4, 20, 24] as [number, number, number, number], classIndex: 1 }], [{ box: [0, 0, 30, 30] as [number, number, number, number], classIndex: 0 }], [{ box: [10, 2, 30, 14] as [number, number, number, number], classIndex: 0 }]];
    const assignments = gts.map((g) => assignAtss(grid, g));
    const raw = [tf.randomNormal([3, 4, 4, channels], 0, 1, 'float32', 1), tf.randomNormal([3, 2, 2, channels], 0, 1, 'float32', 2)] as tf.Tensor4D[];
    const picked = detectionLoss(raw, assignments, [0, 2], grid, regMax);
    const alone = gflLoss({ outputs: raw.map((r) => tf.gather(r, [0, 2])) as tf.Tensor4D[], assignments: [assignments[0]!, assignments[2]!], grid, regMax });
    const all = gflLoss({ outputs: raw, assignments, grid, regMax });
    expect(picked.loss.dataSync()[0]).toBeCloseTo(alone.loss.dataSync()[0]!, 5);
    expect(Math.abs(picked.loss.dataSync()[0]! - all.loss.dataSync()[0]!)).toBeGreaterThan(1e-3);
    expect(detectionLoss(raw, assignments, [0, 1, 2], grid, regMax).loss.dataSync()[0]).toBeCloseTo(all.loss.dataSync()[0]!, 6);
  });
});
