import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { readModelArtifacts, readManifest } from '../models/load-node';
import { graphFromArtifacts } from '../graph/load';
import { heapMemory } from '../graph/wasm-heap-copy';
import { startWasmKernelHelpers } from '../graph/wasm-kernel-helpers';
import { helperShareSince, helperUnitCounts } from '../graph/heap-helpers';
import { Optimizer } from '../train/optimizer';
import { conv2dForwardGrad } from '../graph/ops/conv-grad';
import { MAX_WASM_THREADS, defaultWasmThreads, parseThreads, setWasmThreads, startWasm, wasmThreads } from './wasm-threads';

const root = new URL('../../', import.meta.url).pathname;

/** A forward, a training gradient and an update of the teacher at a small size, as plain arrays. */
function teacherForwardAndGradient(): Float32Array[] {
  const { manifest, modelPath } = readManifest(join(root, 'models', 'nanodet.manifest.json'));
  const graph = graphFromArtifacts(readModelArtifacts(modelPath), { trainable: true });
  try {
    const x = tf.randomNormal([2, 3, 128, 128], 0, 1, 'float32', 7);
    const outs = graph.execute(x, manifest.head.outputs);
    const variables = graph.trainableVariables();
    const { value, grads } = tf.variableGrads(() => tf.addN(graph.execute(x, manifest.head.outputs).map((t) => t.square().mean())) as tf.Scalar, variables);
    // The first convolution's filter and the head's last: both ends of backprop.
    const names = [variables[0]!.name, variables[variables.length - 1]!.name];
    // A mean over leading axes (summed on the heap) and an Adam update (one fused loop).
    const leading = tf.mean(outs[0]!, [0, 1]);
    const optimizer = new Optimizer('adam', { weightDecay: 0.01 });
    optimizer.apply(variables, grads, 1e-3);
    optimizer.dispose();
    const result = [...outs, value, ...names.map((n) => grads[n]!), leading, variables[0]!, variables[variables.length - 1]!].map((t) => t.dataSync() as Float32Array);
    tf.dispose([x, ...outs, value, leading, ...Object.values(grads)]);
    return result;
  } finally {
    graph.dispose();
  }
}

/**
 * Filter gradients whose blocks the threads split both ways: an image's 3 channels to 36 outputs
 * (the output channels split, the last block half there), 16 to 20, and 1x1 from 32 to 124.
 */
function filterGradients(): Float32Array[] {
  type Shape = [number, number, number, number];
  const cases: [Shape, Shape, [number, number]][] = [
    [[2, 17, 17, 3], [3, 3, 3, 36], [2, 2]],
    [[1, 12, 12, 16], [3, 3, 16, 20], [1, 1]],
    [[1, 9, 9, 32], [1, 1, 32, 124], [1, 1]],
  ];
  return cases.map(([xs, ks, strides], i) => tf.tidy(() => {
    const x = tf.randomUniform(xs, -1, 1, 'float32', 10 + i) as tf.Tensor4D;
    const k = tf.randomUniform(ks, -1, 1, 'float32', 20 + i) as tf.Tensor4D;
    const pads: [number, number, number, number] = ks[0] === 1 ? [0, 0, 0, 0] : [1, 1, 1, 1];
    const r = tf.randomUniform(conv2dForwardGrad(x, k, strides, pads, [1, 1]).shape, -1, 1, 'float32', 30 + i);
    return tf.grad((w: tf.Tensor) => conv2dForwardGrad(x, w as tf.Tensor4D, strides, pads, [1, 1]).mul(r).sum())(k).dataSync() as Float32Array;
  }));
}

/**
 * CenterNet-MobileNetV3 at 64x64 (fused depthwise convolutions, hard-swish, squeeze-excite): its
 * head outputs and the gradient of every weight, as plain arrays.
 */
function centernetForwardAndGradient(): Float32Array[] {
  const heads = ['tower_0/CenternetHead/centernet_cls_output/BiasAdd', 'tower_0/CenternetHead/centernet_wh_output/BiasAdd'];
  const graph = graphFromArtifacts(readModelArtifacts(join(root, 'models', 'centernet.json')), { trainable: true });
  try {
    const x = tf.randomUniform([1, 64, 64, 3], 0, 255, 'float32', 5);
    const outs = graph.execute(x, heads);
    const variables = graph.trainableVariables();
    const { value, grads } = tf.variableGrads(() => tf.addN(graph.execute(x, heads).map((t) => t.square().mean())) as tf.Scalar, variables);
    const result = [...outs, value, ...variables.map((v) => grads[v.name]!)].map((t) => t.dataSync() as Float32Array);
    tf.dispose([x, ...outs, value, ...Object.values(grads)]);
    return result;
  } finally {
    graph.dispose();
  }
}

describe('wasm threads in Node', () => {
  it('--threads: 1 to 8 or "all"; anything else is refused with the range', () => {
    expect(parseThreads('2')).toBe(2);
    expect(parseThreads('all')).toBe(defaultWasmThreads());
    expect(parseThreads(undefined)).toBe(defaultWasmThreads());
    for (const bad of ['0', '9', '1.5', 'two', '']) expect(() => parseThreads(bad)).toThrow(`from 1 to ${MAX_WASM_THREADS}, or "all", not "${bad}"`);
  });

  it('two threads give the single-threaded binary\'s forward and gradients bit for bit, and switch at run time', async () => {
    await tf.setBackend('wasm');
    const single = teacherForwardAndGradient();
    const singleFilterGradients = filterGradients();
    const singleCenternet = centernetForwardAndGradient();
    expect(await startWasm(2)).toBe(2);
    expect(wasmThreads()).toBe(2);
    // The threaded heap is shared, and the lab's copies find it (memory.copy, not TypedArray copies).
    expect(heapMemory((tf.backend() as unknown as { wasm: object }).wasm)?.buffer).toBeInstanceOf(SharedArrayBuffer);
    // The convolutions and filter gradients each have their helper thread, started with the backend.
    expect(await startWasmKernelHelpers(0)).toBe(1);
    const two = teacherForwardAndGradient();
    expect(two.map((a) => a.length)).toEqual(single.map((a) => a.length));
    for (const [i, a] of two.entries()) expect(Array.from(a)).toEqual(Array.from(single[i]!));
    for (const [i, a] of filterGradients().entries()) expect(Array.from(a)).toEqual(Array.from(singleFilterGradients[i]!));
    // Another graph: its forward and every weight's gradient.
    const before = helperUnitCounts();
    const centernet = centernetForwardAndGradient();
    // The helper ran part of its kernels (about 40–50% of some 3,400 units here).
    expect(helperShareSince(before)).toBeGreaterThan(0.1);
    expect(centernet.length).toBe(singleCenternet.length);
    for (const [i, a] of centernet.entries()) expect(Array.from(a)).toEqual(Array.from(singleCenternet[i]!));
    expect(setWasmThreads(1)).toBe(1);
    const one = teacherForwardAndGradient();
    for (const [i, a] of one.entries()) expect(Array.from(a)).toEqual(Array.from(single[i]!));
    expect(setWasmThreads(2)).toBe(2);
  });

  it('a command that started the threads ends by itself when its work is done', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wasm-threads-'));
    const script = join(dir, 'start.mts');
    writeFileSync(script, `import { startWasm } from ${JSON.stringify(join(root, 'src/cli/wasm-threads.ts'))};\nvoid startWasm(2).then((n) => console.log('threads', n));\n`);
    const out = execFileSync(join(root, 'node_modules/.bin/tsx'), [script], { cwd: root, timeout: 60_000, encoding: 'utf8' });
    expect(out.trim()).toBe('threads 2');
    // An uncaught error is reported where it was thrown, not as the binary's minified source.
    const failing = join(dir, 'fail.mts');
    writeFileSync(failing, `import { startWasm } from ${JSON.stringify(join(root, 'src/cli/wasm-threads.ts'))};\nvoid startWasm(2).then(() => setTimeout(() => { throw new Error('thrown after start'); }, 0));\n`);
    const run = spawnSync(join(root, 'node_modules/.bin/tsx'), [failing], { cwd: root, timeout: 60_000, encoding: 'utf8' });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('Error: thrown after start');
    expect(run.stderr).toContain('fail.mts:2');
    expect(run.stderr).not.toContain('GROWABLE_HEAP');
  });
});
