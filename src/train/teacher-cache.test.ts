import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_DIR, loadModel, loadSplit } from '../cli/node-lab';
import { iterateBatches, type TrainingBatch } from '../data/pipeline';
import { disposeTaps, readDetector, type DetectorTaps } from './detector-taps';
import { REPAIR_RECIPE } from './repair-recipe';
import { createSession, type DistillSession, type ModelHandle } from './session';
import { readTeacher } from './step';
import { TeacherCache, teacherCacheApplies, teacherCacheKeys } from './teacher-cache';

const KINDS = ['backbone', 'neck', 'head', 'cls', 'box', 'raw'] as const;

function maxDifference(a: DetectorTaps, b: DetectorTaps): number {
  let worst = 0;
  for (const kind of KINDS) {
    expect(a[kind].map((t) => t.shape)).toEqual(b[kind].map((t) => t.shape));
    a[kind].forEach((t, l) => {
      worst = Math.max(worst, tf.tidy(() => tf.max(tf.abs(tf.sub(t, b[kind][l]!))).dataSync()[0]!));
    });
  }
  return worst;
}

// The real teacher, read at the channels the default (derived) student kept, as the repair recipe reads it.
describe('the teacher cache (NanoDet-g on wasm, fixture images at 64 px)', () => {
  let teacher: ModelHandle;
  let student: ModelHandle;
  let session: DistillSession;
  let split: Awaited<ReturnType<typeof loadSplit>>;
  beforeAll(async () => {
    await tf.setBackend('wasm');
    teacher = loadModel('nanodet.manifest.json', { trainable: false, name: 'teacher' });
    student = loadModel('nanodet-student.manifest.json', { trainable: true, name: 'student' });
    session = createSession({ teacher, student, methods: REPAIR_RECIPE.methods.map((m) => ({ ...m })), detectionWeight: 1 });
    split = await loadSplit(FIXTURE_DIR, 'train', student.manifest.classes);
  });
  afterAll(() => {
    session?.dispose();
    teacher?.graph.dispose();
    student?.graph.dispose();
  });

  /** The images at `picks`, in that order, as one batch (flipped when asked). */
  const batchOf = async (picks: number[], flip = false): Promise<TrainingBatch> => {
    const images = picks.map((i) => split.dataset.images[i]!);
    const batches = iterateBatches(images, split.loadImage, student.manifest, { batchSize: picks.length, seed: 1, shuffle: false, inputSize: 64, flipProbability: flip ? 1 : 0 });
    return (await batches.next()).value!;
  };
  const direct = (batch: TrainingBatch) => readDetector(teacher.graph, teacher.manifest, batch.input, session.teacherRead);

  it('gives the taps a teacher forward gives, for batches read whole, in part and not at all', async () => {
    const cache = new TeacherCache(64 * 2 ** 20);
    const batches = [await batchOf([0, 1]), await batchOf([2, 1, 0]), await batchOf([1, 2]), await batchOf([1], true)];
    const before = tf.memory().numTensors;
    try {
      const seen: [number, number][] = [];
      for (const batch of batches) {
        const expected = direct(batch);
        const cached = readTeacher(session, batch, cache);
        // Backbone taps picked to the student's channels, neck, head features and head outputs.
        expect(cached.backbone.length).toBeGreaterThan(0);
        expect(maxDifference(cached, expected)).toBeLessThanOrEqual(1e-5);
        disposeTaps(expected);
        disposeTaps(cached);
        const { hits, misses } = cache.stats();
        seen.push([hits, misses]);
      }
      // [0,1]: both read; [2,1,0]: 2 read, 1 and 0 held; [1,2]: both held; [1] flipped: a new image.
      expect(seen).toEqual([
        [0, 2],
        [2, 3],
        [4, 3],
        [4, 4],
      ]);
      const stats = cache.stats();
      expect(stats.entries).toBe(4);
      expect(tf.memory().numTensors).toBe(before + stats.tensors);
      // Per image: each held tap at one image's size, in float32.
      const one = direct(batches[3]!);
      const bytes = (['backbone', 'neck', 'head', 'raw'] as const).reduce((s, kind) => s + one[kind].reduce((b, t) => b + t.size * 4, 0), 0);
      disposeTaps(one);
      expect(stats.bytes).toBe(4 * bytes);
    } finally {
      cache.dispose();
      batches.forEach((b) => b.input.dispose());
    }
    expect(tf.memory().numTensors).toBe(before - batches.length);
  });

  it('keeps images until its budget is spent, then keeps no more and still serves every batch', async () => {
    const first = await batchOf([0]);
    const probe = direct(first);
    const oneImage = (['backbone', 'neck', 'head', 'raw'] as const).reduce((s, kind) => s + probe[kind].reduce((b, t) => b + t.size * 4, 0), 0);
    disposeTaps(probe);
    const cache = new TeacherCache(oneImage * 1.5);
    const batch = await batchOf([1, 0, 2]);
    try {
      disposeTaps(readTeacher(session, first, cache));
      expect(cache.stats()).toMatchObject({ entries: 1, bytes: oneImage, hits: 0, misses: 1 });
      for (let pass = 0; pass < 2; pass++) {
        const expected = direct(batch);
        const cached = readTeacher(session, batch, cache);
        expect(maxDifference(cached, expected)).toBeLessThanOrEqual(1e-5);
        disposeTaps(expected);
        disposeTaps(cached);
      }
      // Image 0 held from the start; 1 and 2 never fit.
      expect(cache.stats()).toMatchObject({ entries: 1, bytes: oneImage, hits: 2, misses: 5 });
      const none = new TeacherCache(0);
      disposeTaps(readTeacher(session, batch, none));
      expect(none.stats()).toMatchObject({ entries: 0, tensors: 0, misses: 3 });
    } finally {
      cache.dispose();
      first.input.dispose();
      batch.input.dispose();
    }
  });

  it('holds only the feature taps the methods read, and the head outputs', async () => {
    // KD and LD read class and box logits, FGD the neck; hints (the recipe) reads every feature tap.
    expect(session.teacherFeatures).toEqual(['backbone', 'neck', 'head']);
    const fgdKd = createSession({ teacher, student, methods: [{ id: 'fgd' }, { id: 'kd' }, { id: 'ld' }], detectionWeight: 1 });
    expect(fgdKd.teacherFeatures).toEqual(['neck']);
    const cache = new TeacherCache(64 * 2 ** 20, fgdKd.teacherFeatures);
    const batches = [await batchOf([0, 1]), await batchOf([1, 2])];
    try {
      disposeTaps(readTeacher(fgdKd, batches[0]!, cache));
      const expected = readDetector(teacher.graph, teacher.manifest, batches[1]!.input, fgdKd.teacherRead);
      const cached = readTeacher(fgdKd, batches[1]!, cache);
      expect(cached.backbone).toEqual([]);
      expect(cached.head).toEqual([]);
      for (const kind of ['neck', 'cls', 'box', 'raw'] as const) {
        expect(cached[kind]).toHaveLength(3);
        cached[kind].forEach((t, l) => expect(tf.tidy(() => tf.max(tf.abs(tf.sub(t, expected[kind][l]!))).dataSync()[0]!), kind).toBeLessThanOrEqual(1e-5));
      }
      // Per image: the neck's three levels and the three head outputs.
      const perImage = (['neck', 'raw'] as const).reduce((s, kind) => s + expected[kind].reduce((b, t) => b + (t.size * 4) / 2, 0), 0);
      expect(cache.stats()).toMatchObject({ entries: 3, bytes: 3 * perImage, tensors: 3 * 6 });
      disposeTaps(expected);
      disposeTaps(cached);
    } finally {
      cache.dispose();
      fgdKd.dispose();
      batches.forEach((b) => b.input.dispose());
    }
  });

  it('tells images apart by id, flip, photo or annotated image and size; runs with random crops use none', () => {
    const batch = { ids: ['a', 'a', 'b'], flipped: [false, true, false], unlabeled: [false, false, true] } as unknown as TrainingBatch;
    expect(teacherCacheKeys(batch, 320)).toEqual(['image|a|as-is|320', 'image|a|flipped|320', 'photo|b|as-is|320']);
    expect(teacherCacheKeys(batch, 416)[0]).toBe('image|a|as-is|416');
    expect(teacherCacheApplies({})).toBe(true);
    expect(teacherCacheApplies({ cropScale: 1 })).toBe(true);
    expect(teacherCacheApplies({ cropScale: 0.6 })).toBe(false);
    expect(() => new TeacherCache(-1)).toThrow('budget must be 0 or more');
  });
});
