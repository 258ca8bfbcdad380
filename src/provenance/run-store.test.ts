import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { METHODS } from '../distill/registry';
import { parseManifest } from '../models/manifest';
import { defaultExperiment } from '../train/config';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { logRow } from './run-log';
import { readRunFile, runFileName, runJson, runZip } from './run-file';
import { lastAfter, newRunRecord, runEvaluation, withEvaluation, type RunRecord } from './run-record';
import { runCheckpointKey, runLogKey, RunStore, StorageFullError, type RunBackend } from './run-store';

/** The store's backend in memory, for the logic only (IndexedDB itself is covered end to end). */
class MapBackend implements RunBackend {
  readonly map = new Map<string, unknown>();
  /** Bytes the backend accepts before it throws as a full disk does. */
  limit = Infinity;
  private used() {
    let n = 0;
    for (const v of this.map.values()) n += v instanceof Uint8Array ? v.byteLength : JSON.stringify(v).length;
    return n;
  }
  get<T>(key: string) {
    return Promise.resolve(structuredClone(this.map.get(key)) as T | undefined);
  }
  put(key: string, value: unknown) {
    const size = value instanceof Uint8Array ? value.byteLength : JSON.stringify(value).length;
    if (this.used() + size > this.limit) return Promise.reject(Object.assign(new Error('The quota has been exceeded.'), { name: 'QuotaExceededError' }));
    this.map.set(key, structuredClone(value));
    return Promise.resolve();
  }
  delete(key: string) {
    this.map.delete(key);
    return Promise.resolve();
  }
  keys(prefix: string) {
    return Promise.resolve([...this.map.keys()].filter((k) => k.startsWith(prefix)));
  }
}

const manifest = parseManifest(JSON.parse(readFileSync(join(import.meta.dirname, '../../models/nanodet-student.manifest.json'), 'utf8')));

function run(id: string, methods: string[], createdAt: string): RunRecord {
  const config = defaultExperiment();
  config.methods = methods.map((m) => ({ id: m as 'kd' }));
  config.schedule.inputSize = 64;
  const r = newRunRecord({
    id,
    origin: 'lab',
    createdAt,
    projectVersion: '0.1.0',
    config,
    methodCatalog: METHODS,
    teacher: { name: 'NanoDet-g', weightsSha256: 'aa' },
    student: { manifest, weightsSha256: 'bb' },
    data: { source: 'voc-fixture', train: { name: 'train', ids: ['b', 'a'] }, val: { name: 'val', ids: ['c'] } },
    backend: 'wasm',
    totalSteps: 2,
  });
  const log = [1, 2].map((step) => logRow({ step, epoch: 1, lr: 1e-4, loss: 3 - step, terms: { gfl: 1 }, gradNorm: 2, applied: true, pseudoBoxes: 0, msPerStep: 100 }));
  return { ...r, log, steps: 2, status: 'finished', checkpoint: { step: 2, savedAt: createdAt, bytes: 4 } };
}

describe('the run store', () => {
  it('saves runs with their checkpoints and lists them newest first, without their logs', async () => {
    const backend = new MapBackend();
    const store = new RunStore(backend);
    await store.save(run('r1', ['kd'], '2026-11-28T08:00:00.000Z'), new Uint8Array([1, 2, 3, 4]));
    await store.save(run('r2', ['ld', 'fgd'], '2026-11-28T09:00:00.000Z'));
    const { runs, problems } = await store.list();
    expect(problems).toEqual([]);
    expect(runs.map((r) => [r.id, r.name, r.logRows])).toEqual([
      ['r2', 'ld + fgd, 64², 2026-11-28 09:00', 2],
      ['r1', 'kd, 64², 2026-11-28 08:00', 2],
    ]);
    expect('log' in runs[0]!).toBe(false);
    expect(runs[1]!.methods[0]!.params).toMatchObject({ temperature: 1, mode: 'bce' });
    expect(runs[1]!.data?.train).toEqual({ name: 'train', images: 2, idsSha256: createHash('sha256').update('a\nb').digest('hex') });
    expect(await store.checkpoint('r1')).toEqual(new Uint8Array([1, 2, 3, 4]));
    expect(await store.checkpoint('r2')).toBeUndefined();
    expect((await store.get('r1')).log.map((r) => r.loss)).toEqual([2, 1]);
    // The log is kept apart from the record, so listing never reads it.
    expect((backend.map.get('run:r1') as RunRecord).log).toEqual([]);
    expect((backend.map.get(runLogKey('r1')) as unknown[]).length).toBe(2);
    expect(await store.get('r1')).toEqual(run('r1', ['kd'], '2026-11-28T08:00:00.000Z'));
  });

  it('renames and deletes a run with its checkpoint', async () => {
    const backend = new MapBackend();
    const store = new RunStore(backend);
    await store.save(run('r1', ['kd'], '2026-11-28T08:00:00.000Z'), new Uint8Array([9]));
    await store.save(run('r2', ['ld'], '2026-11-28T09:00:00.000Z'));
    await store.rename('r1', '  KD at T=1, the baseline ');
    expect((await store.get('r1')).name).toBe('KD at T=1, the baseline');
    await expect(store.rename('r1', '   ')).rejects.toThrow('A run needs a name.');
    // Its checkpoint freed, the run stays (curves, evaluations) without it.
    const freed = await store.dropCheckpoint('r1');
    expect(freed.checkpoint).toBeNull();
    expect(await store.checkpoint('r1')).toBeUndefined();
    expect((await store.get('r1')).log).toHaveLength(2);
    expect((await store.list()).runs.find((r) => r.id === 'r1')?.checkpoint).toBeNull();
    await store.delete('r1');
    expect((await store.list()).runs.map((r) => r.id)).toEqual(['r2']);
    expect(backend.map.has(runCheckpointKey('r1'))).toBe(false);
    expect(backend.map.has(runLogKey('r1'))).toBe(false);
    await expect(store.get('r1')).rejects.toThrow('There is no run "r1" in the history (deleted?).');
  });

  it('reports a full disk with the storage used, and keeps what was saved before', async () => {
    const backend = new MapBackend();
    const store = new RunStore(backend, async () => ({ usage: 52_428_800, quota: 53_477_376 }));
    await store.save(run('r1', ['kd'], '2026-11-28T08:00:00.000Z'));
    backend.limit = backend.map.size ? JSON.stringify([...backend.map.values()][0]).length + 100 : 0;
    const big = new Uint8Array(1000);
    const error = await store.save(run('r2', ['ld'], '2026-11-28T09:00:00.000Z'), big).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageFullError);
    expect((error as Error).message).toBe(
      'The browser\'s storage is full (50.0 MB of 51.0 MB used): the checkpoint of "ld, 64², 2026-11-28 09:00" (step 2) was not saved. Delete runs from the history (export them first to keep them) to make room.',
    );
    expect((await store.list()).runs.map((r) => r.id)).toEqual(['r1']);
  });

  it('reports an entry that does not read, skips it, and lists every other run', async () => {
    const backend = new MapBackend();
    const store = new RunStore(backend);
    await store.save(run('r1', ['kd'], '2026-11-28T08:00:00.000Z'));
    await store.save(run('r3', ['rm'], '2026-11-28T10:00:00.000Z'));
    backend.map.set('run:r2', { runFormat: 1, id: 'r2', name: 'half written', log: 'oops' });
    backend.map.set('run:r4', 'not an object');
    const { runs, problems } = await store.list();
    expect(runs.map((r) => r.id)).toEqual(['r3', 'r1']);
    expect(problems.map((p) => p.key)).toEqual(['run:r2', 'run:r4']);
    expect(problems[0]!.message).toMatch(/^stored entry run:r2 is not a readable run: "createdAt" must be a non-empty string; .*"origin" must be "lab" or "cli"; .*"log" must be a list of steps/);
    expect(problems[1]!.message).toBe('stored entry run:r4 is not a run record (not a JSON object).');
    await store.discard('run:r2');
    expect((await store.list()).problems.map((p) => p.key)).toEqual(['run:r4']);
  });

  it('keeps one evaluation per target and step, and finds the last one after training', () => {
    const r = run('r1', ['kd'], '2026-11-28T08:00:00.000Z');
    const report = (mapAll: number) => ({ inputSize: 64, mapAll, map11: mapAll, coco: { ap: 0.1 }, counts: { images: 2 }, perClass: [{ className: 'bird', apAll: mapAll, numGt: 1 }] });
    let next = withEvaluation(r, runEvaluation('after', 1, 'val', report(0.2)), 'now');
    next = withEvaluation(next, runEvaluation('after', 2, 'val', report(0.3)), 'now');
    next = withEvaluation(next, runEvaluation('after', 2, 'val', report(0.4)), 'now');
    expect(next.evaluations.map((e) => [e.step, e.mapAll])).toEqual([
      [1, 0.2],
      [2, 0.4],
    ]);
    expect(lastAfter(next)?.perClass).toEqual([{ className: 'bird', apAll: 0.4, numGt: 1 }]);
  });

  it('exports a run as JSON or as a .zip with its checkpoint, and imports it under a new id', async () => {
    const r = run('r1', ['kd'], '2026-11-28T08:00:00.000Z');
    const ckpt = Uint8Array.from({ length: 300 }, (_, i) => i & 255);
    expect(runFileName(r, 'zip')).toBe('run-kd-64-2026-11-28-08-00.zip');
    const fromZip = readRunFile('run.zip', runZip(r, ckpt));
    expect(fromZip.record).toEqual(r);
    expect(fromZip.checkpoint).toEqual(ckpt);
    const fromJson = readRunFile('run.json', new TextEncoder().encode(runJson(r)));
    expect(fromJson).toEqual({ record: r });
    expect(() => readRunFile('notes.json', new TextEncoder().encode('{"hello": 1}'))).toThrow(/^notes.json is not a readable run: "runFormat" must be 1/);
    expect(() => readRunFile('broken.json', new TextEncoder().encode('{'))).toThrow(/^broken.json is neither a run .zip nor JSON/);
    const store = new RunStore(new MapBackend());
    await store.save(r);
    const imported = await store.import(fromJson.record, undefined, 'r9');
    expect(imported.checkpoint).toBeNull();
    const withCkpt = await store.import(fromZip.record, fromZip.checkpoint, 'r10');
    expect(withCkpt.checkpoint?.step).toBe(2);
    expect(await store.checkpoint('r10')).toEqual(ckpt);
    expect((await store.list()).runs.map((x) => x.id).sort()).toEqual(['r1', 'r10', 'r9']);
  });
});
