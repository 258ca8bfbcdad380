/**
 * Helper threads for the lab's own wasm kernels. tfjs-backend-wasm runs its kernels on a pool of
 * threads the lab cannot reach (kept at one thread: src/cli/wasm-threads.ts says why); the lab's
 * kernels (wasm-conv.ts, wasm-filter-grad.ts) run on the calling thread and on these helpers. On
 * the threaded binary, whose heap is shared memory, a helper is a worker that instantiates the
 * same small module on the same heap (each module has its own helpers, idle in Atomics.wait
 * while another module runs) and runs part of a kernel's calls: the caller writes the calls (rows
 * of integer arguments, in units) into a list on the heap, opens the job and wakes them
 * with Atomics.notify, and every thread, the caller too, takes the next unit no thread has taken
 * (Atomics.add on a shared counter) until none is left. Then the caller closes the job and waits
 * only for the helpers still inside it (a shared count). A helper that starts late (waiting for
 * a core) gets fewer units rather than holding the whole kernel back with a fixed share, and one
 * that wakes after the job was closed does nothing: the caller never waits for a sleeping thread
 * to wake (on a busy machine that took milliseconds, longer than many kernels).
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
  /** A module built with `eachCall` (oneFunctionModule): the helper runs a unit with one call of its `each`. */
  moduleBytes: Uint8Array;
  arity: number;
  /** Int32 words: [job asked (negative: stop), unused, ready]. */
  control: SharedArrayBuffer;
  /** Shared by the helpers of a module: Int32 words (WORK_WORDS). */
  work: SharedArrayBuffer;
}

/**
 * The words of a module's shared work list: the next unit to take, the job's units and calls per
 * unit, the job open now (0: none), the helpers inside a job, the last job a helper failed in,
 * the last job asked, and where the job's calls lie on the heap.
 */
const W = { next: 0, units: 1, perUnit: 2, open: 3, active: 4, failed: 5, last: 6, callsAt: 7 } as const;
const WORK_WORDS = 8;

/**
 * What a helper runs, as source text (a bundler may rename or wrap a function it compiles, and
 * the worker must get text that refers to nothing outside itself): instantiate the module on the
 * heap, say it is ready, then on each wake enter the job, take units while it is open and any
 * are left, and leave it (the last one out wakes the caller).
 */
const HELPER_SOURCE = `(data) => {
  const each = new WebAssembly.Instance(new WebAssembly.Module(data.moduleBytes), { env: { memory: data.memory } }).exports.each;
  const control = new Int32Array(data.control);
  const work = new Int32Array(data.work);
  const rowBytes = 4 * data.arity;
  Atomics.store(control, 2, 1);
  Atomics.notify(control, 2);
  let seen = 0;
  for (;;) {
    Atomics.wait(control, 0, seen);
    const job = Atomics.load(control, 0);
    if (job < 0) return;
    seen = job;
    Atomics.add(work, ${W.active}, 1);
    if (Atomics.load(work, ${W.open}) === job) {
      try {
        const units = Atomics.load(work, ${W.units});
        const per = Atomics.load(work, ${W.perUnit});
        const at = Atomics.load(work, ${W.callsAt});
        for (let u = Atomics.add(work, ${W.next}, 1); u < units; u = Atomics.add(work, ${W.next}, 1)) each(at + u * per * rowBytes, per);
      } catch (error) {
        Atomics.store(work, ${W.failed}, job);
      }
    }
    if (Atomics.sub(work, ${W.active}, 1) === 1) Atomics.notify(work, ${W.active});
  }
}`;

/** A module's each(at, count): `count` calls, their arguments read from the heap at `at` (oneFunctionModule with `eachCall`). */
export type EachCall = (at: number, count: number) => void;

/** Units run through runUnits in this thread so far, and how many of them the helpers took. */
const unitCounts = { units: 0, byHelpers: 0 };
/** How many units the lab's kernels have run here so far, and how many of those the helper threads ran (a copy). */
export function helperUnitCounts(): { units: number; byHelpers: number } {
  return { ...unitCounts };
}

/** The share of the units run since `before` (helperUnitCounts) that the helpers ran, 0 to 1. */
export function helperShareSince(before: { units: number; byHelpers: number }): number {
  return (unitCounts.byHelpers - before.byHelpers) / Math.max(1, unitCounts.units - before.units);
}

/** How long the caller waits for a helper before it gives up with an error (ms). */
const HELPER_TIMEOUT_MS = 60_000;

interface Helper {
  control: Int32Array;
  /** Shared with the other helpers of its module (HelperData). */
  work: Int32Array;
  worker: { terminate(): void };
  failed: boolean;
}

let host: HelperHost | null = null;
/** Helpers by heap memory, then by module key. */
const helpers = new WeakMap<WebAssembly.Memory, Map<string, Helper[]>>();
const started: Helper[] = [];
/** The work list the helpers of a module share, by heap memory and module key. */
const sharedWork = new WeakMap<WebAssembly.Memory, Map<string, SharedArrayBuffer>>();

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

/** The modules whose calls helpers run, by key: their binary (built with `eachCall`) and their function's i32 arguments. */
const modules = new Map<string, { build: (sharedMemory: boolean) => Uint8Array; arity: number }>();

/** Says that the kernel module `key` (`build`, built with `eachCall`, its function taking `arity` i32 arguments) shares its calls with helpers. */
export function helperModule(key: string, build: (sharedMemory: boolean) => Uint8Array, arity: number): void {
  modules.set(key, { build, arity });
}

/** Whether helpers can run here at all: a host, a shared heap, and a thread that may block. */
function helpersPossible(memory: WebAssembly.Memory): boolean {
  return !!host && typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer && canBlock();
}

/** Helpers each module wants: the backend's threads less the caller. */
const helpersWanted = () => Math.max(0, (host?.threads() ?? 1) - 1);

/**
 * The helpers of the module `key` (helperModule) on `memory` that are ready: up to the backend's
 * threads less one, started on first use (ready a moment later; until then, none).
 */
export function readyHelpers(memory: WebAssembly.Memory, key: string): Helper[] {
  const module = modules.get(key);
  if (!module || !helpersPossible(memory)) return [];
  let byKey = helpers.get(memory);
  if (!byKey) helpers.set(memory, (byKey = new Map()));
  // Stopped or failed helpers make way for new ones.
  const list = (byKey.get(key) ?? []).filter((h) => !h.failed);
  byKey.set(key, list);
  const wanted = helpersWanted();
  let work = sharedWork.get(memory)?.get(key);
  if (list.length < wanted && !work) {
    work = new SharedArrayBuffer(4 * WORK_WORDS);
    if (!sharedWork.has(memory)) sharedWork.set(memory, new Map());
    sharedWork.get(memory)!.set(key, work);
  }
  while (list.length < wanted) {
    const control = new SharedArrayBuffer(12);
    const data: HelperData = { memory, moduleBytes: module.build(true), arity: module.arity, control, work: work! };
    const helper: Helper = { control: new Int32Array(control), work: new Int32Array(work!), worker: host!.start(HELPER_SOURCE, data), failed: false };
    list.push(helper);
    started.push(helper);
  }
  return list.slice(0, wanted).filter((h) => !h.failed && Atomics.load(h.control, 2) === 1);
}

/**
 * Starts the helpers of every kernel module on `memory` and resolves, once all are ready or after
 * `timeoutMs`, with how many each has ready (the fewest). Call it when the backend starts: a
 * helper started inside a kernel may start late, and in a browser worker never, while the
 * thread that made it does not return to its event loop (a training loop that awaits only
 * promises that are already settled does not).
 */
export async function startHelpers(memory: WebAssembly.Memory, timeoutMs = 10_000): Promise<number> {
  if (!helpersPossible(memory) || modules.size === 0) return 0;
  const wanted = helpersWanted();
  const fewest = () => Math.min(...[...modules.keys()].map((key) => readyHelpers(memory, key).length));
  for (const t0 = Date.now(); Date.now() - t0 < timeoutMs; await new Promise((r) => setTimeout(r, 10))) {
    if (fewest() >= wanted) break;
  }
  return fewest();
}

/**
 * Runs `units` · `callsPerUnit` calls (rows of `arity` i32 words on the heap from `callsAt`; unit
 * u is rows u·callsPerUnit .. (u + 1)·callsPerUnit − 1, run in order by one thread) with `each` (the
 * module's each(at, count), on the caller) and on the ready helpers, each thread taking the next
 * unit left, and returns when all are done. A helper that fails or does not answer is an error
 * (its part of the result would be missing).
 */
export function runUnits(ready: Helper[], each: EachCall, callsAt: number, arity: number, units: number, callsPerUnit: number): void {
  const unitBytes = 4 * arity * callsPerUnit;
  unitCounts.units += units;
  if (ready.length === 0) {
    for (let u = 0; u < units; u++) each(callsAt + u * unitBytes, callsPerUnit);
    return;
  }
  // No helper is inside a job here (the last one closed with none inside): the list is the caller's.
  const { work } = ready[0]!;
  const job = Atomics.load(work, W.last) + 1;
  Atomics.store(work, W.last, job);
  Atomics.store(work, W.next, 0);
  Atomics.store(work, W.units, units);
  Atomics.store(work, W.perUnit, callsPerUnit);
  Atomics.store(work, W.callsAt, callsAt);
  Atomics.store(work, W.open, job);
  for (const h of ready) {
    Atomics.store(h.control, 0, job);
    Atomics.notify(h.control, 0);
  }
  let mine = 0;
  try {
    for (let u = Atomics.add(work, W.next, 1); u < units; u = Atomics.add(work, W.next, 1), mine++) each(callsAt + u * unitBytes, callsPerUnit);
  } finally {
    unitCounts.byHelpers += units - mine;
    // After a failure here too: no helper may still be writing when the caller moves on. A helper
    // that has not entered the job by now finds it closed and takes nothing.
    Atomics.store(work, W.next, units);
    Atomics.store(work, W.open, 0);
    waitForHelpersInside(ready, work);
  }
  if (Atomics.load(work, W.failed) === job) {
    stopFailed(ready);
    throw new Error('A helper thread of the lab\'s wasm kernels failed; the run can go on single-threaded (reload, or start it with one thread).');
  }
}

function waitForHelpersInside(ready: Helper[], work: Int32Array): void {
  for (let inside = Atomics.load(work, W.active); inside !== 0; inside = Atomics.load(work, W.active)) {
    if (Atomics.wait(work, W.active, inside, HELPER_TIMEOUT_MS) === 'timed-out') {
      stopFailed(ready);
      throw new Error(`A helper thread of the lab's wasm kernels did not answer in ${HELPER_TIMEOUT_MS / 1000} s.`);
    }
  }
}

/** Stops a module's helpers after one failed (the next kernel starts new ones). */
function stopFailed(ready: Helper[]): void {
  for (const h of ready) {
    h.failed = true;
    h.worker.terminate();
  }
}
