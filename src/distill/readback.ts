/**
 * How panel maps read their values back from the device.
 *
 * By default a read is synchronous (`dataSync`), so a method's `maps` are complete when it
 * returns. Inside `deferMapReads(run)` the reads are queued instead: each map tensor is kept
 * (a clone, so it outlives the method's tidy), and once `run` has returned the values are
 * fetched with the asynchronous `data()` and written into the maps' buffers in place. Use it on
 * WebGPU: a synchronous read there stalls the queue (and in Node's Dawn it is not available at
 * all). Map objects and their `data` buffers exist from the start, so copies made meanwhile (e.g.
 * by `combine`, which renames maps) see the values too.
 */
import * as tf from '@tensorflow/tfjs';

type Consumer = (values: Float32Array) => void;

let queue: { tensor: tf.Tensor; consume: Consumer }[] | null = null;

/** Hands the values of `t` to `consume`: now, or inside `deferMapReads` after an asynchronous read. */
export function readValues(t: tf.Tensor, consume: Consumer): void {
  if (queue) {
    queue.push({ tensor: tf.keep(t.clone()), consume });
    return;
  }
  consume(Float32Array.from(t.dataSync()));
}

/**
 * Runs `run` (synchronous: a method call, `runMethods`, a `tf.variableGrads` step) with every
 * map read deferred, then reads them all asynchronously and resolves to `run`'s result with
 * its maps filled in. Tensors kept for the reads are disposed before it resolves.
 */
export async function deferMapReads<T>(run: () => T): Promise<T> {
  if (queue) throw new Error('deferMapReads: already deferring map reads; call it once around the whole step, not nested.');
  const pending: { tensor: tf.Tensor; consume: Consumer }[] = [];
  queue = pending;
  try {
    let result: T;
    try {
      result = run();
    } finally {
      queue = null;
    }
    const values = await Promise.all(pending.map((p) => p.tensor.data()));
    pending.forEach((p, i) => p.consume(Float32Array.from(values[i] ?? [])));
    return result;
  } finally {
    tf.dispose(pending.map((p) => p.tensor));
  }
}
