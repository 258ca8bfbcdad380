/**
 * Helper threads for the lab's own wasm kernels. tfjs-backend-wasm runs its kernels on a pool of
 * threads the lab cannot reach (kept at one thread: src/cli/wasm-threads.ts says why); the lab's
 * kernels (wasm-conv.ts, wasm-filter-grad.ts) run on the calling thread and on these helpers. On
 * the threaded binary, whose heap is shared memory, a helper is a worker that instantiates the
 * same small module on the same heap (each module has its own helpers, idle in Atomics.wait
 * while another module runs) and runs part of a kernel's calls: the caller writes the calls (rows
 * of integer arguments, in units) into a list the helpers share, wakes them with Atomics.notify,
 * and every thread, the caller too, takes the next unit no thread has taken (Atomics.add on a
 * shared counter) until none is left; then the caller waits for the helpers with Atomics.wait. A
 * helper that starts late (waiting for a core) gets fewer units rather than holding the whole
 * kernel back with a fixed share.
 *
 * The environment says how to start a worker (`setHelperHost`): the CLI in Node with
 * worker_threads, the lab's training worker with a Web Worker. Without a host, on an unshared
 * heap, or where Atomics.wait may not block (a page's main thread), kernels run on the caller alone.
 */

/** How this environment starts a helper, and how many threads the kernels may use now. */
export interface HelperHost {
  /** Starts a worker that calls the function whose source is `source` with `data` (structured-cloned). */
  start(source: string, data: HelperData): { terminate(): void };
  /** The wasm backend's kernel threads now: helpers are one fewer. */
  threads(): number;
}

export interface HelperData {
  memory: WebAssembly.Memory;
  moduleBytes: Uint8Array;
  exportName: string;
  arity: number;
  /** Int32 words: [job asked, job done (negative: failed), ready]. */
  control: SharedArrayBuffer;
  /** Shared by the helpers of a module: Int32 words [next unit, units, calls per unit]. */
  work: SharedArrayBuffer;
  /** Shared by the helpers of a module: the job's calls, `arity` words each. */
  calls: SharedArrayBuffer;
}

/**
 * What a helper runs, as source text (a bundler may rename or wrap a function it compiles, and
 * the worker must get text that refers to nothing outside itself): instantiate the module on the
 * heap, say it is ready, then for each job run the listed calls and say it is done.
 */
const HELPER_SOURCE = `(data) => {
  const f = new WebAssembly.Instance(new WebAssembly.Module(data.moduleBytes), { env: { memory: data.memory } }).exports[data.exportName];
  const control = new Int32Array(data.control);
  const work = new Int32Array(data.work);
  const calls = new Int32Array(data.calls);
  Atomics.store(control, 2, 1);
  Atomics.notify(control, 2);
  let seen = 0;
  for (;;) {
    Atomics.wait(control, 0, seen);
    const job = Atomics.load(control, 0);
    if (job < 0) return;
    seen = job;
    let done = job;
    try {
      const units = Atomics.load(work, 1);
      const per = Atomics.load(work, 2);
      for (let u = Atomics.add(work, 0, 1); u < units; u = Atomics.add(work, 0, 1)) {
        for (let i = u * per; i < (u + 1) * per; i++) f(...calls.subarray(i * data.arity, (i + 1) * data.arity));
      }
    } catch (error) {
      done = -job;
    }
    Atomics.store(control, 1, done);
    Atomics.notify(control, 1);
  }
}`;

/** Calls a helper list holds; a job with more runs on the caller alone. */
export const HELPER_CALLS = 1 << 16;
/** How long the caller waits for a helper before it gives up with an error (ms). */
const HELPER_TIMEOUT_MS = 60_000;

interface Helper {
  control: Int32Array;
  /** Shared with the other helpers of its module (HelperData). */
  work: Int32Array;
  calls: Int32Array;
  arity: number;
  job: number;
  worker: { terminate(): void };
  failed: boolean;
}

let host: HelperHost | null = null;
/** Helpers by heap memory, then by module key. */
const helpers = new WeakMap<WebAssembly.Memory, Map<string, Helper[]>>();
const started: Helper[] = [];
/** The work counter and call list the helpers of a module share, by heap memory and module key. */
const sharedWork = new WeakMap<WebAssembly.Memory, Map<string, { work: SharedArrayBuffer; calls: SharedArrayBuffer }>>();

/** Sets (or, with null, removes) how helpers start here; stops the helpers already started. */
export function setHelperHost(next: HelperHost | null): void {
  stopHelpers();
  host = next;
}

/** Stops every helper (their heaps' next kernels start new ones). */
export function stopHelpers(): void {
  for (const h of started.splice(0)) {
    Atomics.store(h.control, 0, -1);
    Atomics.notify(h.control, 0);
    h.worker.terminate();
    h.failed = true;
  }
}

let blockingWaitAllowed: boolean | undefined;
function canBlock(): boolean {
  if (blockingWaitAllowed === undefined) {
    try {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
      blockingWaitAllowed = true;
    } catch {
      blockingWaitAllowed = false;
    }
  }
  return blockingWaitAllowed;
}

/**
 * The helpers ready to run calls of the function `exportName` (`arity` integer arguments) of the
 * module `build(true)` on `memory`: up to the backend's threads less one, started on first use
 * (they are ready a moment later; until then, none).
 */
export function readyHelpers(memory: WebAssembly.Memory, key: string, build: (sharedMemory: boolean) => Uint8Array, exportName: string, arity: number): Helper[] {
  if (!host || typeof SharedArrayBuffer === 'undefined' || !(memory.buffer instanceof SharedArrayBuffer) || !canBlock()) return [];
  let byKey = helpers.get(memory);
  if (!byKey) helpers.set(memory, (byKey = new Map()));
  // Stopped or failed helpers make way for new ones.
  const list = (byKey.get(key) ?? []).filter((h) => !h.failed);
  byKey.set(key, list);
  const wanted = Math.max(0, host.threads() - 1);
  let shared = sharedWork.get(memory)?.get(key);
  if (list.length < wanted && !shared) {
    shared = { work: new SharedArrayBuffer(12), calls: new SharedArrayBuffer(HELPER_CALLS * arity * 4) };
    if (!sharedWork.has(memory)) sharedWork.set(memory, new Map());
    sharedWork.get(memory)!.set(key, shared);
  }
  while (list.length < wanted) {
    const control = new SharedArrayBuffer(12);
    const { work, calls } = shared!;
    const data: HelperData = { memory, moduleBytes: build(true), exportName, arity, control, work, calls };
    const helper: Helper = { control: new Int32Array(control), work: new Int32Array(work), calls: new Int32Array(calls), arity, job: 0, worker: host.start(HELPER_SOURCE, data), failed: false };
    list.push(helper);
    started.push(helper);
  }
  return list.slice(0, wanted).filter((h) => !h.failed && Atomics.load(h.control, 2) === 1);
}

/**
 * Runs `units` · `callsPerUnit` calls (rows of `arity` integers in `calls`; unit u is rows
 * u·callsPerUnit .. (u + 1)·callsPerUnit − 1, run in order by one thread) with `run` on the caller
 * and with the module's function on the ready helpers, each thread taking the next unit left, and
 * returns when all are done. A helper that fails or does not answer is an error (its part of the
 * result would be missing).
 */
export function runUnits(ready: Helper[], calls: Int32Array, arity: number, callsPerUnit: number, run: (call: Int32Array) => void): void {
  const units = callsPerUnit > 0 ? Math.floor(calls.length / arity / callsPerUnit) : 0;
  const runUnit = (u: number) => {
    for (let i = u * callsPerUnit; i < (u + 1) * callsPerUnit; i++) run(calls.subarray(i * arity, (i + 1) * arity));
  };
  if (ready.length === 0 || units > HELPER_CALLS / callsPerUnit) {
    for (let u = 0; u < units; u++) runUnit(u);
    return;
  }
  const { work } = ready[0]!;
  ready[0]!.calls.set(calls);
  Atomics.store(work, 0, 0);
  Atomics.store(work, 1, units);
  Atomics.store(work, 2, callsPerUnit);
  for (const h of ready) {
    h.job += 1;
    Atomics.store(h.control, 0, h.job);
    Atomics.notify(h.control, 0);
  }
  try {
    for (let u = Atomics.add(work, 0, 1); u < units; u = Atomics.add(work, 0, 1)) runUnit(u);
  } finally {
    // After a failure here too: no helper may still be writing when the caller moves on.
    Atomics.store(work, 0, units);
    waitForHelpers(ready);
  }
}

function waitForHelpers(ready: Helper[]): void {
  for (const h of ready) {
    for (;;) {
      const done = Atomics.load(h.control, 1);
      if (done === h.job) break;
      if (done === -h.job) {
        h.failed = true;
        h.worker.terminate();
        throw new Error('A helper thread of the lab\'s wasm kernels failed; the run can go on single-threaded (reload, or start it with one thread).');
      }
      if (Atomics.wait(h.control, 1, done, HELPER_TIMEOUT_MS) === 'timed-out') {
        h.failed = true;
        h.worker.terminate();
        throw new Error(`A helper thread of the lab's wasm kernels did not answer in ${HELPER_TIMEOUT_MS / 1000} s.`);
      }
    }
  }
}
