import { describe, expect, it } from 'vitest';
import { bestCandidate, choiceRecord, deriveBest, photoSets } from './candidates';

describe('candidates from several photo sets', () => {
  it('deals consecutive disjoint sets and says what is missing', () => {
    expect(photoSets(160, 32, 5)).toEqual([
      [0, 32],
      [32, 64],
      [64, 96],
      [96, 128],
      [128, 160],
    ]);
    expect(photoSets(40, 32, 1)).toEqual([[0, 32]]);
    expect(() => photoSets(150, 32, 5)).toThrow('5 candidates of 32 photos each need 160 photos; 150 are available. Add photos, or ask for fewer candidates or fewer photos each.');
    expect(() => photoSets(160, 32, 0)).toThrow(/positive integer/);
  });

  it('keeps the highest mAP, then the highest COCO AP, then the first', () => {
    // The five default students' scores on fold 1's twenty choosing images (README).
    const fold1 = [51.0, 37.0, 39.8, 36.6, 37.6].map((mapAll) => ({ mapAll, cocoAp: 0 }));
    expect(bestCandidate(fold1)).toBe(0);
    expect(bestCandidate([{ mapAll: 0.3, cocoAp: 0.1 }, { mapAll: 0.3, cocoAp: 0.2 }, { mapAll: 0.2, cocoAp: 0.9 }])).toBe(1);
    expect(bestCandidate([{ mapAll: 0.3, cocoAp: 0.2 }, { mapAll: 0.3, cocoAp: 0.2 }])).toBe(0);
    expect(() => bestCandidate([])).toThrow(/No candidates/);
  });

  it('derives one candidate per set, keeps the best scored, and scores none when there is one set', async () => {
    const sets: [number, number][] = [[0, 2], [2, 4], [4, 6]];
    const scored: number[] = [];
    const fold1 = [0.37, 0.51, 0.4];
    const run = await deriveBest(sets, async ([from, to]) => `photos ${from}-${to}`, async (_c, i) => {
      scored.push(i);
      return { mapAll: fold1[i]!, cocoAp: 0 };
    });
    expect(run).toEqual({ kept: 'photos 2-4', chosen: 1, scores: fold1.map((mapAll) => ({ mapAll, cocoAp: 0 })) });
    expect(scored).toEqual([0, 1, 2]);
    const single = await deriveBest([[0, 32]], async () => 'only', async () => {
      throw new Error('a single set is not scored');
    });
    expect(single).toEqual({ kept: 'only', chosen: 0, scores: [] });
    expect(choiceRecord({ data: 'voc', split: 'train', inputSize: 320 }, sets, run.scores, run.chosen)).toEqual({
      data: 'voc',
      split: 'train',
      inputSize: 320,
      chosen: 1,
      candidates: sets.map((photos, i) => ({ photos, mapAll: fold1[i], cocoAp: 0 })),
    });
  });
});
