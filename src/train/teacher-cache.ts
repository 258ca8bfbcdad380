/**
 * The teacher's taps of each training image, kept between epochs. The teacher is frozen and reads
 * every image of a batch on its own (no batch statistics), so an image that comes back with the
 * same flip at the same size gives the same taps: a step whose images are all held runs no
 * teacher forward, and one with some held runs the teacher on the others only.
 *
 * Entries are added until a memory budget is spent, then no more: a shuffled pass over more
 * images than fit would evict every entry before its next use under least-recently-used, while
 * keeping the first ones serves a fixed share of every later epoch.
 *
 * Only the feature taps the run's methods read are held (a session's `teacherFeatures`), and the
 * head outputs; a batch served in part or whole from the cache has no other feature taps.
 *
 * The key is the image's id, whether it is a photo without annotations, its flip and the input
 * size. A run with random crops draws a new window at every visit, so it must not use a cache
 * (`teacherCacheApplies`).
 */
import * as tf from '@tensorflow/tfjs';
import type { TrainingBatch } from '../data/pipeline';
import { disposeTaps, type DetectorTaps } from './detector-taps';
import type { FeatureTap } from './session';

/** The tap kinds an entry can hold; `cls` and `box` are the two column blocks of `raw`. */
type Held = FeatureTap | 'raw';
type Entry = Partial<Record<Held, tf.Tensor4D[]>> & { bytes: number };

export interface TeacherCacheStats {
  /** Images whose taps came from the cache, and images the teacher ran on, since the start. */
  hits: number;
  misses: number;
  /** Images held, and the bytes their taps take. */
  entries: number;
  bytes: number;
  budgetBytes: number;
  /** Tensors held (a caller that counts tensors across steps subtracts these). */
  tensors: number;
}

export { DEFAULT_TEACHER_CACHE_MIB, teacherCacheApplies } from './teacher-cache-policy';

/** The cache keys of a batch's images, in batch order. */
export function teacherCacheKeys(batch: TrainingBatch, inputSize: number): string[] {
  return batch.ids.map((id, i) => `${batch.unlabeled?.[i] ? 'photo' : 'image'}|${id}|${batch.flipped[i] ? 'flipped' : 'as-is'}|${inputSize}`);
}

const tensorBytes = (t: tf.Tensor) => t.size * 4;

export class TeacherCache {
  private readonly held = new Map<string, Entry>();
  private heldBytes = 0;
  private hits = 0;
  private misses = 0;
  /** Width of the class block of `raw` (the teacher's classes, or those picked for the student). */
  private classWidth: number | undefined;

  /** The kinds held: the head outputs and the features asked for (the others come back empty when any image was held). */
  private readonly kinds: Held[];

  /** `features`: the feature taps to hold (a session's `teacherFeatures`). */
  constructor(
    readonly budgetBytes: number,
    features: readonly FeatureTap[] = ['backbone', 'neck', 'head'],
  ) {
    if (!(budgetBytes >= 0)) throw new Error(`A teacher cache budget must be 0 or more bytes, got ${budgetBytes}.`);
    this.kinds = [...features, 'raw'];
  }

  /**
   * The teacher's taps of `input` (one image per key), as `readTeacher(input)` would give them:
   * held images are taken from the cache, the teacher runs on the others (one forward over those
   * rows), and those are kept while the budget lasts. The caller owns the returned tensors.
   */
  read(readTeacher: (input: tf.Tensor4D) => DetectorTaps, input: tf.Tensor4D, keys: string[]): DetectorTaps {
    if (keys.length !== input.shape[0]) throw new Error(`${keys.length} cache keys for a batch of ${input.shape[0]} images.`);
    const missing = keys.map((k, i) => (this.held.has(k) ? -1 : i)).filter((i) => i >= 0);
    this.hits += keys.length - missing.length;
    this.misses += missing.length;
    let fresh: DetectorTaps | undefined;
    if (missing.length > 0) {
      const rows = missing.length === keys.length ? input : tf.tidy(() => tf.gather(input, missing));
      try {
        fresh = readTeacher(rows);
      } finally {
        if (rows !== input) rows.dispose();
      }
      this.classWidth = fresh.cls[0]?.shape[3] ?? 0;
      this.keep(fresh, missing.map((i) => keys[i]!));
      if (missing.length === keys.length) return fresh;
    }
    try {
      return this.assemble(keys, missing, fresh);
    } finally {
      if (fresh) disposeTaps(fresh);
    }
  }

  stats(): TeacherCacheStats {
    let tensors = 0;
    for (const e of this.held.values()) tensors += this.kinds.reduce((s, kind) => s + e[kind]!.length, 0);
    return { hits: this.hits, misses: this.misses, entries: this.held.size, bytes: this.heldBytes, budgetBytes: this.budgetBytes, tensors };
  }

  dispose(): void {
    for (const e of this.held.values()) for (const kind of this.kinds) tf.dispose(e[kind]!);
    this.held.clear();
    this.heldBytes = 0;
  }

  /** Keeps each fresh image's rows while the budget lasts (duplicate keys in one batch: the first). */
  private keep(fresh: DetectorTaps, keys: string[]): void {
    // Every image of a batch has the same shapes, so the same bytes.
    const bytes = this.kinds.reduce((s, kind) => s + fresh[kind].reduce((b, t) => b + tensorBytes(t) / t.shape[0], 0), 0);
    keys.forEach((key, j) => {
      if (this.held.has(key)) return;
      if (this.heldBytes + bytes > this.budgetBytes) return;
      // A copy, not a view: on cpu and WebGL a contiguous slice shares its input's buffer, which
      // would keep the whole batch's taps alive. Once per image, when the teacher first reads it.
      const row = (t: tf.Tensor4D) => tf.tidy(() => tf.slice(t, [j, 0, 0, 0], [1, -1, -1, -1]).add(0) as tf.Tensor4D);
      const entry = { bytes } as Entry;
      for (const kind of this.kinds) entry[kind] = fresh[kind].map(row);
      this.held.set(key, entry);
      this.heldBytes += bytes;
    });
  }

  /** The batch's taps in batch order: held rows, and the fresh taps' rows for the images just read. */
  private assemble(keys: string[], missing: number[], fresh: DetectorTaps | undefined): DetectorTaps {
    return tf.tidy(() => {
      const freshRow = new Map(missing.map((i, j) => [i, j]));
      const rowsOf = (kind: Held, level: number) =>
        keys.map((key, i) => {
          const j = freshRow.get(i);
          if (j !== undefined) return tf.slice(fresh![kind][level]!, [j, 0, 0, 0], [1, -1, -1, -1]);
          // Not missing: held when the batch was looked up, and nothing is ever evicted.
          return this.held.get(key)![kind]![level]!;
        });
      const levels = (kind: Held) => {
        if (!this.kinds.includes(kind)) return [];
        const count = fresh ? fresh[kind].length : this.held.get(keys[0]!)![kind]!.length;
        return Array.from({ length: count }, (_, l) => (keys.length === 1 ? rowsOf(kind, l)[0]!.clone() : tf.concat(rowsOf(kind, l), 0)) as tf.Tensor4D);
      };
      const raw = levels('raw');
      const k = this.classWidth!;
      return {
        backbone: levels('backbone'),
        neck: levels('neck'),
        head: levels('head'),
        raw,
        cls: raw.map((r) => r.slice([0, 0, 0, 0], [-1, -1, -1, k]) as tf.Tensor4D),
        box: raw.map((r) => r.slice([0, 0, 0, k], [-1, -1, -1, -1]) as tf.Tensor4D),
      };
    });
  }
}
