import { describe, expect, it } from 'vitest';
import { orderTerms } from './components/LossCharts';
import { appendPoint, backendOrderFromQuery, backendRequest, eventStatus } from './controller';
import { withRepairRecipe } from '../train/repair-recipe';
import { defaultExperiment, parseExperiment, repairRecipe, type ExperimentConfig } from '../train/config';
import type { LossPoint } from './store';

const point = (step: number, loss = step): LossPoint => ({ step, values: { loss } });

describe('controller helpers', () => {
  it('reads the backend order from the query, ignoring unknown names', () => {
    expect(backendOrderFromQuery('?backend=wasm')).toEqual(['wasm']);
    expect(backendOrderFromQuery('?backend=webgl, wasm')).toEqual(['webgl', 'wasm']);
    expect(backendOrderFromQuery('?backend=tpu')).toEqual(['webgpu', 'webgl', 'wasm']);
    expect(backendOrderFromQuery('')).toEqual(['webgpu', 'webgl', 'wasm']);
  });

  it('takes the backend from the address, else the choice kept in this browser, else picks it', () => {
    expect(backendRequest('?backend=wasm', 'webgpu')).toEqual({ source: 'url', order: ['wasm'], allowSoftware: true, label: '?backend=wasm' });
    expect(backendRequest('', 'webgpu')).toEqual({ source: 'choice', order: ['webgpu', 'webgl', 'wasm'], allowSoftware: true, label: 'webgpu' });
    expect(backendRequest('', 'wasm')).toEqual({ source: 'choice', order: ['wasm', 'webgpu', 'webgl'], allowSoftware: true, label: 'wasm' });
    // Automatic: a software GPU is passed over for a faster backend.
    expect(backendRequest('?testHooks', null)).toEqual({ source: 'auto', order: ['webgpu', 'webgl', 'wasm'], allowSoftware: false, label: 'automatic' });
    expect(backendRequest('', 'tpu').source).toBe('auto');
    expect(backendRequest('?backend=webgpu?backend=wasm', null).source).toBe('auto');
  });

  it('lets an event of a run move its status only while the run is live, never after it ended', () => {
    expect(eventStatus('starting', 'running')).toBe('running');
    expect(eventStatus('running', 'pausing')).toBe('pausing');
    expect(eventStatus('paused', 'running')).toBe('running');
    // A 'started' that arrives after the first step failed keeps the error on screen.
    expect(eventStatus('error', 'running')).toBe('error');
    expect(eventStatus('stopped', 'running')).toBe('stopped');
    expect(eventStatus('finished', 'paused')).toBe('finished');
    expect(eventStatus('idle', 'running')).toBe('idle');
  });

  it('appends a step to the curves, replacing points from a step that is run again (resume)', () => {
    const h = [point(1), point(2), point(3)];
    const next = appendPoint(h, 3, 0.5, { detection: 0.4 });
    expect(next.map((p) => p.step)).toEqual([1, 2, 3]);
    expect(next[2]!.values).toEqual({ loss: 0.5, detection: 0.4 });
    expect(appendPoint(h, 2, 1, {}).map((p) => p.step)).toEqual([1, 2]);
  });

  it('thins old points past 4000, keeping the last 2000 as they are', () => {
    const h = Array.from({ length: 4000 }, (_, i) => point(i + 1));
    const next = appendPoint(h, 4001, 0, {});
    // 4001 points: the first 2001 (indices 0..2000) keep every other one (1001 of them), the last 2000 all.
    expect(next).toHaveLength(1001 + 2000);
    expect(next[next.length - 1]!.step).toBe(4001);
    expect(next[1]!.step).toBe(3);
  });

  it('orders the curves: total, detection, its parts, then the methods', () => {
    const pts: LossPoint[] = [{ step: 1, values: { 'fgd/fg': 1, fgd: 1, 'detection/qfl': 1, loss: 1, detection: 1, 'detection/dfl': 1, ld: 1 } }];
    expect(orderTerms(pts)).toEqual(['loss', 'detection', 'detection/dfl', 'detection/qfl', 'fgd', 'fgd/fg', 'ld']);
  });

  it('keeps the recipe\'s annotated images below a small batch, so the experiment stays valid', () => {
    const small: ExperimentConfig = { ...defaultExperiment(), data: { trainSplit: 'train', valSplit: 'val' } };
    small.schedule = { ...small.schedule, batchSize: 2 };
    const r = withRepairRecipe(small);
    expect(r.data.annotatedPerBatch).toBe(1);
    expect(() => parseExperiment(JSON.parse(JSON.stringify(r)))).not.toThrow();
    const one = withRepairRecipe({ ...small, schedule: { ...small.schedule, batchSize: 1 } });
    expect(one.data.annotatedPerBatch).toBe(0);
  });

  it('sets the repair recipe (its 360 steps over the epochs) on an experiment and keeps the person\'s data, size, epochs and lab settings', () => {
    const mine = { ...defaultExperiment(), data: { trainSplit: 'train', valSplit: 'val', maxUnlabeled: 40 }, lab: { evalEvery: 5 } };
    mine.schedule = { ...mine.schedule, inputSize: 320, epochs: 3, batchSize: 8 };
    const r = withRepairRecipe(mine);
    const recipe = repairRecipe();
    expect(r.methods).toEqual(recipe.methods);
    expect(r.detectionWeight).toBe(recipe.detectionWeight);
    expect(r.data).toEqual({ trainSplit: 'train', valSplit: 'val', maxUnlabeled: 40, annotatedPerBatch: 2 });
    expect(r.schedule).toMatchObject({ inputSize: 320, epochs: 3, batchSize: 8, optimizer: 'adam', lr: 2e-5, ema: 0.99, steps: 360 });
    expect(r.lab).toEqual({ evalEvery: 5 });
    expect(() => parseExperiment(r)).not.toThrow();
  });
});
