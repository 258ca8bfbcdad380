/**
 * The wasm backend in Node with one kernel thread per core. tfjs-backend-wasm 4.22 runs its
 * threaded binary only in browsers: its WASM_HAS_MULTITHREAD_SUPPORT flag is false in Node, and
 * its loader gives the binary's pthread workers a Blob URL, which Node's worker_threads cannot
 * load. The binary itself supports Node (Emscripten runs pthreads on worker_threads), so here it
 * is started directly, with its worker script written to a file, and handed to the package's own
 * BackendWasm under the name 'wasm', so every wasm kernel (and this project's replacements of some)
 * runs on it unchanged.
 *
 * The threads go to the lab's own kernels (convolutions and their gradients, on helper threads
 * that share the heap: graph/heap-helpers.ts); tfjs-wasm's own kernel pool runs on one thread
 * (`setThreadsCount(1)` below). Its kernels left in a training step are small (a loss's sums,
 * softmaxes, products of rows), and XNNPACK parallelises even those: each call wakes the pool
 * and waits for it. Every method's loss and gradients took 76–86 ms with a pool of two threads
 * and 65–70 ms with one, while a plain step took the same either way (README, "tfjs-wasm's pool
 * on one thread").
 * The kernels partition their work by output, so results do not depend on the thread count
 * (wasm-threads.test.ts compares them bit for bit).
 */
import { createRequire } from 'node:module';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { BackendWasm, setThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { setHelperHost, type HelperHost } from '../graph/heap-helpers';
import { startWasmKernelHelpers } from '../graph/wasm-kernel-helpers';

const require = createRequire(import.meta.url);

/** At most this many kernel threads (as in the browser, see src/worker/backend.ts). */
export const MAX_WASM_THREADS = 8;

/** The lab's kernel threads (the caller and helpers), when the threaded binary runs. */
let labThreads = 1;

interface ThreadedModule {
  cwrap: (name: string, ret: string | null, args: string[]) => (...a: number[]) => number;
  tfjs?: Record<string, (...a: number[]) => number>;
  PThread: { unusedWorkers: NodeWorker[]; runningWorkers: NodeWorker[]; allocateUnusedWorker: () => void };
}
interface NodeWorker {
  ref: () => void;
  unref: () => void;
}

let threaded: ThreadedModule | undefined;

/** Logical cores of this machine, at most MAX_WASM_THREADS. */
export function defaultWasmThreads(): number {
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  return Math.max(1, Math.min(MAX_WASM_THREADS, cores));
}

/** `--threads` of the command line: a count from 1 to 8, or "all" (one per logical core). */
export function parseThreads(value: string | undefined): number {
  if (value === undefined || value === 'all') return defaultWasmThreads();
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > MAX_WASM_THREADS) {
    throw new Error(`--threads takes a whole number from 1 to ${MAX_WASM_THREADS}, or "all", not "${value}".`);
  }
  return n;
}

/** The pthread worker script, written once per package version (Node loads workers from files). */
function workerScript(wasmOut: string): string {
  const { wasmWorkerContents } = require(join(wasmOut, 'tfjs-backend-wasm-threaded-simd.worker.js')) as { wasmWorkerContents: string };
  // The package's template literal turned the script's "\n" escapes into newlines (its browser
  // loader puts them back the same way before making its Blob).
  const text = wasmWorkerContents.replace(/\n/g, '\\n');
  const version = (require('@tensorflow/tfjs-backend-wasm/package.json') as { version: string }).version;
  const dir = join(os.tmpdir(), `distill-lab-tfjs-wasm-${version}`);
  // .cjs: the script uses require, whatever package.json surrounds it.
  const file = join(dir, 'tfjs-backend-wasm-threaded-simd.worker.cjs');
  if (!existsSync(file) || readFileSync(file, 'utf8') !== text) {
    mkdirSync(dir, { recursive: true });
    // Written aside and renamed, so processes starting at once never read half a file.
    const partial = `${file}.${process.pid}.tmp`;
    writeFileSync(partial, text);
    renameSync(partial, file);
  }
  return file;
}

/**
 * Emscripten refs a pthread's worker while the thread runs, and the kernel pool's threads run
 * (waiting for work) for the whole life of the backend, so a finished command would never exit.
 * The kernels are synchronous calls of the main thread: when it has nothing left to do, neither
 * have the pool's threads, and they need not hold the process.
 */
function neverHoldTheProcess(module: ThreadedModule): void {
  const p = module.PThread;
  const release = (w: NodeWorker) => {
    w.unref();
    w.ref = () => {};
  };
  for (const w of [...p.unusedWorkers, ...p.runningWorkers]) release(w);
  const allocate = p.allocateUnusedWorker.bind(p);
  p.allocateUnusedWorker = () => {
    allocate();
    release(p.unusedWorkers[p.unusedWorkers.length - 1]!);
  };
}

async function startThreadedModule(): Promise<ThreadedModule> {
  const wasmOut = join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'wasm-out');
  const workerFile = workerScript(wasmOut);
  const mainScript = join(wasmOut, 'tfjs-backend-wasm-threaded-simd.js');
  const factory = require(mainScript) as (config: object) => Promise<ThreadedModule>;
  // Emscripten's Node glue adds process handlers that rethrow any uncaught error from inside the
  // module, so Node would print the binary's minified source as the place of the error: they go.
  const events = ['uncaughtException', 'unhandledRejection'];
  const before = events.map((e) => new Set(process.listeners(e as 'uncaughtException')));
  let module: ThreadedModule;
  try {
    module = await factory({
      locateFile: (path: string) => (path.endsWith('.worker.js') ? workerFile : join(wasmOut, path)),
      mainScriptUrlOrBlob: mainScript,
    });
  } finally {
    events.forEach((e, i) => {
      for (const l of process.listeners(e as 'uncaughtException')) if (!before[i]!.has(l)) process.removeListener(e, l);
    });
  }
  neverHoldTheProcess(module);
  // The functions the package's own loader attaches (backend_wasm.ts, init()).
  module.tfjs = {
    init: module.cwrap('init', null, []),
    initWithThreadsCount: module.cwrap('init_with_threads_count', null, ['number']),
    getThreadsCount: module.cwrap('get_threads_count', 'number', []),
    registerTensor: module.cwrap('register_tensor', null, ['number', 'number', 'number']),
    disposeData: module.cwrap('dispose_data', null, ['number']),
    dispose: module.cwrap('dispose', null, []),
  };
  return module;
}

/**
 * Makes 'wasm' the backend, with `threads` kernel threads (default: one per logical core). One
 * thread uses the package's own single-threaded binary. Where the threaded binary does not start,
 * says why on stderr and runs on one thread. Returns the thread count the backend runs.
 */
export async function startWasm(threads = defaultWasmThreads()): Promise<number> {
  if (threads > 1 && !threaded) {
    try {
      const module = await startThreadedModule();
      // tfjs-wasm's own pool: one thread (see the top of this file).
      setThreadsCount(1);
      // The package registered its own 'wasm' when imported (tf.findBackend would start it).
      if ('wasm' in (tf.engine() as unknown as { registryFactory: Record<string, unknown> }).registryFactory) tf.removeBackend('wasm');
      tf.registerBackend('wasm', () => new BackendWasm(module as never), 3);
      threaded = module;
    } catch (error) {
      process.stderr.write(`wasm: the multi-threaded binary did not start here (${(error as Error).message ?? error}); running on one thread.\n`);
    }
  }
  if (!(await tf.setBackend('wasm'))) throw new Error('The wasm backend did not start on this machine.');
  if (threaded) {
    setWasmThreads(threads);
    setHelperHost(nodeHelperHost);
    await startWasmKernelHelpers();
  }
  return wasmThreads();
}

/**
 * Helpers for the lab's own kernels (graph/heap-helpers.ts) on worker threads, as many as the
 * backend's threads less one. They never hold the process open.
 */
export const nodeHelperHost: HelperHost = {
  start: (source, data) => {
    const worker = new Worker(`const { workerData } = require('node:worker_threads'); (${source})(workerData);`, { eval: true, workerData: data });
    worker.unref();
    return { terminate: () => void worker.terminate() };
  },
  threads: () => wasmThreads(),
};

/** The kernel threads the wasm backend runs now. */
export function wasmThreads(): number {
  return threaded?.tfjs ? labThreads : 1;
}

/**
 * Changes the thread count of a backend started with more than one thread (the benches compare
 * 1 and all cores in one run): the lab's kernels use that many threads from their next call.
 */
export function setWasmThreads(threads: number): number {
  if (!threaded?.tfjs) {
    if (threads !== 1) throw new Error('The wasm backend runs single-threaded here: start it with startWasm(n > 1) first.');
    return 1;
  }
  if (!Number.isInteger(threads) || threads < 1 || threads > MAX_WASM_THREADS) throw new Error(`wasm threads: a whole number from 1 to ${MAX_WASM_THREADS}, not ${threads}.`);
  labThreads = threads;
  return labThreads;
}
