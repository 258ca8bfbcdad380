/**
 * Size and cost of a graph: parameters, and multiply-accumulates (MACs) per image for the
 * convolutions and matrix products, counted from the real output shapes of one run.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { TrainableGraph } from './executor';

export interface GraphProfile {
  parameters: number;
  /** Multiply-accumulates for one image at the profiled input size (bias adds not counted). */
  macs: number;
  macsByOp: Record<string, number>;
  inputShape: number[];
}

export function profileGraph(graph: TrainableGraph, inputShapes?: Record<string, number[]>): GraphProfile {
  const shapes = graph.nodeShapes(graph.outputs, inputShapes);
  const macsByOp: Record<string, number> = {};
  let macs = 0;
  for (const node of graph.nodeList()) {
    const out = shapes.get(node.name)?.[0];
    const weightShape = (i: number) => shapes.get(node.inputs[i]?.split(':')[0] ?? '')?.[0];
    if (!out) continue;
    let m = 0;
    const batch = out[0] ?? 1;
    if (node.op === 'Conv2D' || node.op === '_FusedConv2D') {
      const w = weightShape(1);
      if (w) m = (out.reduce((a, b) => a * b, 1) / batch) * w[0]! * w[1]! * w[2]!;
    } else if (node.op === 'DepthwiseConv2dNative' || node.op === 'FusedDepthwiseConv2dNative') {
      const w = weightShape(1);
      if (w) m = (out.reduce((a, b) => a * b, 1) / batch) * w[0]! * w[1]!;
    } else if (node.op === 'MatMul' || node.op === '_FusedMatMul' || node.op.startsWith('BatchMatMul')) {
      const a = weightShape(0);
      if (a) m = (out.reduce((x, y) => x * y, 1) / (out.length > 2 ? batch : 1)) * a[a.length - 1]!;
    }
    if (m > 0) {
      macsByOp[node.op] = (macsByOp[node.op] ?? 0) + m;
      macs += m;
    }
  }
  const first = graph.inputs[0];
  return { parameters: graph.parameterCount(), macs, macsByOp, inputShape: first ? shapes.get(first.name)?.[0] ?? first.shape : [] };
}

/** One kernel (by name, phase and input shapes) summed over a profiled run. */
export interface KernelCost {
  name: string;
  phase: 'forward' | 'backward';
  /** Input shapes, e.g. "[4,52,52,96] [3,3,96,96]". */
  shapes: string;
  calls: number;
  /** Time inside the kernel, less the kernels it ran itself (ms). */
  ms: number;
}

export interface StepProfile {
  /** Wall time of the whole run (ms). */
  wallMs: number;
  /** Kernel time recorded while the forward ran (ms), and while backprop ran. */
  forwardMs: number;
  backwardMs: number;
  /** Wall time not spent in any kernel: executor, tape and engine bookkeeping, JS (ms). */
  overheadMs: number;
  /** Peak bytes of live tensors during the run (tfjs's count, sampled after every kernel). */
  peakBytes: number;
  kernelCount: number;
  /**
   * Kernels that run work of their own: all but Reshape and Identity (which hand back their
   * input's data on wasm, as the lab registers it, and on WebGPU) and custom-gradient scopes.
   * What a GPU dispatches.
   */
  workCount: number;
  /** Every (kernel, phase, input shapes), costliest first. */
  kernels: KernelCost[];
}

/** Kernel names that run no work: views of their input, and the engine's custom-gradient scopes. */
const NO_WORK = new Set(['Reshape', 'Identity', 'unnamed scope']);

interface EngineInternals {
  profiler: { profileKernel: (name: string, inputs: unknown, f: () => tf.Tensor[]) => unknown };
  state: { scopeStack: { name: string }[] };
}

/**
 * Profiles one run of `f` (a training step, a forward): each kernel's own time, split into the
 * forward and backprop (kernels run inside tfjs's 'backward' scope), the time outside kernels,
 * and the peak of live tensor bytes. Kernel times are exact on backends that compute
 * synchronously (wasm, cpu); on GPU backends they measure the launch, not the work.
 */
export async function profileStep(f: () => Promise<unknown> | unknown): Promise<StepProfile> {
  const engine = tf.engine() as unknown as EngineInternals;
  const profiler = engine.profiler;
  const original = profiler.profileKernel;
  const costs = new Map<string, KernelCost>();
  let childMs = 0;
  let kernelCount = 0;
  let workCount = 0;
  profiler.profileKernel = function (name, inputs, run) {
    const phase = engine.state.scopeStack.some((s) => s.name === 'backward') ? 'backward' : 'forward';
    const outerChild = childMs;
    childMs = 0;
    const t0 = performance.now();
    const result = original.call(this, name, inputs, run);
    const total = performance.now() - t0;
    const self = total - childMs;
    childMs = outerChild + total;
    const shapes = Object.values(inputs as Record<string, tf.Tensor | null>)
      .map((t) => (t ? `[${t.shape.join(',')}]` : '-'))
      .join(' ');
    const key = `${name}|${phase}|${shapes}`;
    const c = costs.get(key) ?? { name, phase, shapes, calls: 0, ms: 0 };
    c.calls++;
    c.ms += self;
    costs.set(key, c);
    kernelCount++;
    if (!NO_WORK.has(name)) workCount++;
    return result;
  };
  const t0 = performance.now();
  let info: Awaited<ReturnType<typeof tf.profile>>;
  try {
    info = await tf.profile(async () => {
      await f();
    });
  } finally {
    profiler.profileKernel = original;
  }
  const wallMs = performance.now() - t0;
  const peakBytes = info.peakBytes;
  const kernels = [...costs.values()].sort((a, b) => b.ms - a.ms);
  const sum = (phase: string) => kernels.filter((k) => k.phase === phase).reduce((s, k) => s + k.ms, 0);
  const forwardMs = sum('forward');
  const backwardMs = sum('backward');
  return { wallMs, forwardMs, backwardMs, overheadMs: wallMs - forwardMs - backwardMs, peakBytes, kernelCount, workCount, kernels };
}

/** Kernel costs summed by name and phase (shapes merged), costliest first. */
export function kernelsByName(profile: StepProfile): KernelCost[] {
  const merged = new Map<string, KernelCost>();
  for (const k of profile.kernels) {
    const key = `${k.name}|${k.phase}`;
    const m = merged.get(key) ?? { name: k.name, phase: k.phase, shapes: '', calls: 0, ms: 0 };
    m.calls += k.calls;
    m.ms += k.ms;
    merged.set(key, m);
  }
  return [...merged.values()].sort((a, b) => b.ms - a.ms);
}

/** A printable report of a profile: totals, the top kernels by name, the top single kernels by shape. */
export function formatStepProfile(profile: StepProfile, top = 12): string {
  const pct = (ms: number) => `${((100 * ms) / Math.max(profile.wallMs, 1e-9)).toFixed(1)}%`;
  const lines = [
    `wall ${profile.wallMs.toFixed(0)} ms: forward kernels ${profile.forwardMs.toFixed(0)} ms (${pct(profile.forwardMs)}), ` +
      `backward kernels ${profile.backwardMs.toFixed(0)} ms (${pct(profile.backwardMs)}), outside kernels ${profile.overheadMs.toFixed(0)} ms (${pct(profile.overheadMs)}); ` +
      `${profile.kernelCount} kernels (${profile.workCount} that run work); peak tensor memory ${(profile.peakBytes / 2 ** 20).toFixed(0)} MiB`,
    `  top kernels by name:`,
  ];
  for (const k of kernelsByName(profile).slice(0, top)) {
    lines.push(`    ${k.name.padEnd(24)} ${k.phase.padEnd(8)} ${String(k.calls).padStart(5)} calls ${k.ms.toFixed(0).padStart(7)} ms  ${pct(k.ms).padStart(6)}`);
  }
  lines.push(`  top kernels by shape:`);
  for (const k of profile.kernels.slice(0, top)) {
    lines.push(`    ${k.name.padEnd(24)} ${k.phase.padEnd(8)} ${String(k.calls).padStart(5)} calls ${k.ms.toFixed(0).padStart(7)} ms  ${pct(k.ms).padStart(6)}  ${k.shapes}`);
  }
  return lines.join('\n');
}
