import { describe, expect, it } from 'vitest';
import type { CheckpointInfo } from '../worker/lab';
import { whatANewRunReplaces } from './run-guard';
import type { LossPoint } from './store';

const history = (n: number): LossPoint[] => Array.from({ length: n }, (_, i) => ({ step: i + 1, values: { loss: 1 } }));
const saved = { step: 6, totalSteps: 20 } as CheckpointInfo;

describe('what a new run replaces', () => {
  it('is nothing on a fresh page', () => {
    expect(whatANewRunReplaces({ history: [], step: 0, totalSteps: 0, status: 'idle' }, null)).toEqual([]);
  });
  it('names the trained weights, the curves and the checkpoint of a stopped run', () => {
    expect(whatANewRunReplaces({ history: history(7), step: 7, totalSteps: 20, status: 'stopped' }, saved)).toEqual([
      "the student's weights after 7 steps (a new run starts from the student as loaded; export them first to keep them)",
      'the loss curves of steps 1–7',
      'the checkpoint of step 6 of 20 saved in this browser (replaced by the new run\'s first checkpoint)',
    ]);
  });
  it('after a reload, the curves and checkpoint (the weights were not restored)', () => {
    expect(whatANewRunReplaces({ history: history(6), step: 6, totalSteps: 20, status: 'idle' }, saved)).toEqual([
      'the loss curves of steps 1–6',
      "the checkpoint of step 6 of 20 saved in this browser (replaced by the new run's first checkpoint)",
    ]);
  });
});
