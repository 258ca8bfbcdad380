import { describe, expect, it } from 'vitest';
import { firstRunPath, trainBlockers } from './first-run';
import { initialTraining, type LabState } from './store';

const ready = <T,>(value: T) => ({ status: 'ready' as const, value });
const base = {
  backend: ready({ backend: 'wasm', attempts: [] }),
  deviceLost: null,
  models: { teacher: ready({ name: 'NanoDet-g' }), student: ready({ name: 'half depth' }) },
  data: { status: 'idle' },
  pairProblems: [],
  config: { methods: [], detectionWeight: 1, schedule: { batchSize: 4 } },
  invalidFields: {},
  training: initialTraining,
} as unknown as LabState;

describe('the first run', () => {
  it('highlights data as the next step once the models are ready, and says why Train waits', () => {
    expect(firstRunPath(base).map((p) => [p.id, p.state])).toEqual([
      ['models', 'done'],
      ['data', 'next'],
      ['methods', 'todo'],
      ['train', 'todo'],
    ]);
    expect(trainBlockers(base)).toEqual(['Load a VOC folder or archive (step 2).']);
  });

  it('goes on to Train when data and a method are there, and names every other blocker', () => {
    const s = { ...base, data: ready({ label: 'voc-fixture', train: { images: new Array(20) } }) } as unknown as LabState;
    expect(firstRunPath(s).find((p) => p.state === 'next')?.id).toBe('train');
    expect(firstRunPath(s)[1]!.detail).toBe('voc-fixture, 20 training images');
    expect(firstRunPath(s)[2]!.detail).toBe('detection loss only (plain fine-tuning)');
    expect(trainBlockers(s, 5)).toEqual([]);
    const blocked = { ...s, config: { methods: [], detectionWeight: 0, schedule: { batchSize: 4 } }, invalidFields: { lr: 'learning rate' } } as unknown as LabState;
    expect(trainBlockers(blocked, 0)).toEqual([
      'Choose a method or keep the detection loss (step 3).',
      'Fix learning rate first: a field outlined in red holds no valid value.',
      'The training images are fewer than one batch of 4: lower the batch size or use more images.',
    ]);
    expect(trainBlockers({ ...base, models: { ...base.models, student: { status: 'loading' } } } as unknown as LabState)).toContain('The student is loading (step 1).');
  });
});
