// What the browser bench page takes and returns (plain data, shared by the page, its worker and the command line).
import type { MethodId } from '../distill/registry';
import type { BackendName, BackendReport } from '../worker/backend-types';

export interface StepBenchOptions {
  backend: BackendName;
  /** wasm only: kernel threads (needs the threaded binary, i.e. a cross-origin isolated page). */
  threads?: number;
  inputSize: number;
  batchSize: number;
  /** Timed steps after one warm-up step; the median is reported. */
  repeats: number;
  /** Method ids of the distillation step; empty: a plain fine-tuning step (no teacher). */
  methods: MethodId[];
}

export interface StepBenchResult {
  backend: BackendName;
  report: BackendReport;
  /** Each timed step, in milliseconds. */
  stepsMs: number[];
  medianMs: number;
  /** The warm-up step (kernels compiled, optimizer slots made). */
  warmupMs: number;
  inputSize: number;
  batchSize: number;
  methods: MethodId[];
  crossOriginIsolated: boolean;
  hardwareConcurrency: number;
  /** The loss of the last step: a finite number shows the step computed something. */
  loss: number;
  /** wasm: helper threads that share the heap with the lab's own kernels (graph/heap-helpers.ts). */
  helperThreads?: number;
  /** wasm: of the lab's kernels' units of work in the timed steps, the share the helpers ran (0 to 1). */
  helperShare?: number;
}

/** What the page exposes to the driver as `window.stepBench`. */
export interface StepBenchPage {
  run(options: StepBenchOptions): Promise<StepBenchResult>;
  /** The page's WebGPU adapter, asked for directly (cheap: no tfjs, no models), or why there is none. */
  webgpuAdapter(): Promise<{ name: string; software: boolean } | { error: string }>;
}
