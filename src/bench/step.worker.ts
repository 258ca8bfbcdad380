/**
 * The browser bench's worker: one backend, the lab's own models from /models/, and the lab's own
 * training step (`distillStep`) on a fixed synthetic batch, timed after one warm-up step. Each
 * run gets a fresh worker (the page makes one per run), since the wasm thread count is fixed
 * when the backend starts.
 */
import * as Comlink from 'comlink';
import * as tf from '@tensorflow/tfjs';
import '../worker/wasm-urls';
import { selectBackend } from '../worker/backend';
import { startWasmKernelHelpers } from '../graph/wasm-kernel-helpers';
import { helperShareSince, helperUnitCounts } from '../graph/heap-helpers';
import { buildHandle, fetchModel } from '../worker/models';
import type { TrainingBatch } from '../data/pipeline';
import { Optimizer } from '../train/optimizer';
import { createSession, type ModelHandle } from '../train/session';
import { distillStep } from '../train/step';
import type { StepBenchOptions, StepBenchResult } from './types';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function load(role: 'teacher' | 'student', manifest: string): Promise<ModelHandle> {
  const m = await fetchModel(`/models/${manifest}`, self.location.href);
  return buildHandle(role, m.manifest, m.artifacts);
}

/** A fixed batch: seeded noise in the model's layout, one box per image (the step's cost does not depend on the pixels). */
function syntheticBatch(student: ModelHandle, inputSize: number, batchSize: number): TrainingBatch {
  const shape: [number, number, number, number] = student.manifest.input.layout === 'NCHW' ? [batchSize, 3, inputSize, inputSize] : [batchSize, inputSize, inputSize, 3];
  const s = inputSize;
  return {
    input: tf.randomNormal(shape, 0, 1, 'float32', 1),
    gts: Array.from({ length: batchSize }, (_, i) => [{ box: [0.15 * s + i, 0.2 * s, 0.7 * s, 0.85 * s] as [number, number, number, number], classIndex: 0 }]),
    letterboxes: Array.from({ length: batchSize }, () => ({ sourceWidth: s, sourceHeight: s, inputSize: s, resizedWidth: s, resizedHeight: s, padLeft: 0, padTop: 0 })),
    ids: Array.from({ length: batchSize }, (_, i) => `synthetic-${i}`),
    flipped: Array.from({ length: batchSize }, () => false),
  };
}

async function run(o: StepBenchOptions): Promise<StepBenchResult> {
  const report = await selectBackend([o.backend], { allowSoftware: true, wasmThreads: o.threads });
  // Started with the backend (ready by now): how many each kernel has.
  const helperThreads = report.backend === 'wasm' ? await startWasmKernelHelpers(5000) : undefined;
  const student = await load('student', 'nanodet-student.manifest.json');
  const teacher = o.methods.length ? await load('teacher', 'nanodet.manifest.json') : null;
  const batch = syntheticBatch(student, o.inputSize, o.batchSize);
  const session = createSession({ teacher, student, methods: o.methods.map((id) => ({ id })), detectionWeight: 1 });
  const optimizer = new Optimizer('adam');
  try {
    // lr 0: the weights stay as loaded, so every step does the same work. The step reads its
    // logged numbers (loss, terms, gradient norm) asynchronously, and nothing else.
    const step = () => distillStep(session, optimizer, batch, { lr: 0, clipNorm: 35 });
    let t0 = performance.now();
    await step();
    const warmupMs = performance.now() - t0;
    const stepsMs: number[] = [];
    let loss = NaN;
    const before = helperUnitCounts();
    for (let r = 0; r < o.repeats; r++) {
      t0 = performance.now();
      loss = (await step()).loss;
      stepsMs.push(performance.now() - t0);
    }
    const share = helperShareSince(before);
    return {
      backend: report.backend,
      report,
      stepsMs,
      medianMs: median(stepsMs),
      warmupMs,
      inputSize: o.inputSize,
      batchSize: o.batchSize,
      methods: o.methods,
      crossOriginIsolated: self.crossOriginIsolated,
      hardwareConcurrency: navigator.hardwareConcurrency,
      loss,
      helperThreads,
      helperShare: helperThreads ? share : undefined,
    };
  } finally {
    session.dispose();
    optimizer.dispose();
    batch.input.dispose();
    student.graph.dispose();
    teacher?.graph.dispose();
  }
}

Comlink.expose({ run });
