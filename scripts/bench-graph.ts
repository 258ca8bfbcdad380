/**
 * Benchmark of the trainable graph executor (not a test): on one backend, in one run, the
 * executor's forward time against tf.GraphModel.execute on the same model and input, and one
 * training step (forward + GFL loss + backward + SGD update) against both forwards, for NanoDet-g
 * at 416x416, batch 1 and 4. Prints ratios, which survive a noisy shared machine better than times:
 * a step against a forward is the median of each round's ratio (`pairedRatio`); a time in
 * parentheses after a step is that ratio for its row.
 * The forwards are timed with the filters packed: the first forward after an update, which
 * repacks them (wasm), is printed apart.
 * After each batch's row, one step's profile: kernel time in the forward and in backprop, time
 * outside kernels, peak tensor memory, and the costliest kernels (by name, and by input shapes).
 * On wasm it runs one kernel thread per logical core (--threads n for another count) and, after
 * each batch's row, times the forward and the step again on one thread: the speed-up of the cores.
 * Then the same with the convolution layers run as separate nodes, as the graph spells them
 * (`setConvFusion(false)`), alternately with the fused layers: what fusing buys, and its peak memory.
 *   npm run bench:graph [-- --backend wasm] [--threads all|n] [--repeats 5] [--batches 1,4] [--top 12 (0: no profile)]
 */
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { makeAnchorGrid } from '../src/detect/anchors';
import { assignAtss } from '../src/detect/atss';
import { gflLoss } from '../src/detect/gfl-loss';
import { graphFromArtifacts } from '../src/graph/load';
import { formatStepProfile, profileStep } from '../src/graph/profile';
import { readManifest, readModelArtifacts } from '../src/models/load-node';
import { setConvFusion } from '../src/graph/ops/conv';
import { parseThreads, setWasmThreads, startWasm } from '../src/cli/wasm-threads';
import { recordOnlyWhatGradientsReach } from '../src/graph/ops/tape';
import { helperShareSince, helperUnitCounts } from '../src/graph/heap-helpers';

// The tape as training records it (src/train/step.ts): only what gradients reach, and the tensors
// a gradient reads saved without a copy.
recordOnlyWhatGradientsReach();

const args = process.argv.slice(2);
const option = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : fallback;
};
const backend = option('backend', 'wasm');
const repeats = Number(option('repeats', '5'));
const batches = option('batches', '1,4').split(',').map(Number);
const top = Number(option('top', '12'));
const threadsAsked = parseThreads(option('threads', 'all'));
const WARM_UP_ROUNDS = 3;

async function time(f: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await f();
  return performance.now() - t0;
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
/**
 * A step against a forward: the median of each round's step over the same round's forward. A
 * machine whose load moves within the run moves a round's two alike, where the medians of the two
 * columns may come from rounds minutes apart.
 */
const pairedRatio = (steps: number[], forwards: number[]) => median(steps.map((t, i) => t / forwards[i]!));

async function main() {
  const threads = backend === 'wasm' ? await startWasm(threadsAsked) : 0;
  if (backend !== 'wasm' && !(await tf.setBackend(backend))) throw new Error(`Backend "${backend}" is not available here.`);
  const models = resolve(import.meta.dirname, '..', 'models');
  const { manifest, modelPath } = readManifest(join(models, 'nanodet.manifest.json'));
  const artifacts = readModelArtifacts(modelPath);
  // tf.GraphModel checks the input against the declared [1,3,416,416]; declare a free batch so it
  // can run batch 4 too (its final reshapes bake batch 1, so both read the raw head outputs).
  const topology = structuredClone(artifacts.modelTopology) as { node: { name: string; attr?: Record<string, { shape?: { dim: { size: string }[] } }> }[] };
  topology.node.find((n) => n.name === manifest.input.name)!.attr!.shape!.shape!.dim[0]!.size = '-1';
  const reference = await tf.loadGraphModel(tf.io.fromMemory({ ...artifacts, modelTopology: topology, signature: undefined }));
  const graph = graphFromArtifacts(artifacts, { trainable: true });
  const heads = manifest.head.outputs;
  const size = manifest.input.size;
  const grid = makeAnchorGrid(size, manifest.head.strides, manifest.head.octaveBaseScale);
  const optimizer = tf.train.sgd(1e-4);
  const threadNote = threads ? `, ${threads} kernel thread${threads === 1 ? '' : 's'}` : '';
  console.log(`NanoDet-g ${size}x${size} on ${tf.getBackend()}${threadNote}, median of ${repeats} interleaved runs after a warm-up`);
  console.log('batch | GraphModel fwd | executor fwd | ratio | train step | step / fwd | step / GraphModel fwd');
  for (const batch of batches) {
    const x = tf.randomNormal([batch, 3, size, size], 0, 1, 'float32', 1);
    const runReference = async () => {
      const outs = reference.execute({ [manifest.input.name]: x }, heads) as tf.Tensor[];
      await Promise.all(outs.map((o) => o.data()));
      tf.dispose(outs);
    };
    const runExecutor = async () => {
      const outs = graph.execute(x, heads);
      await Promise.all(outs.map((o) => o.data()));
      tf.dispose(outs);
    };
    const gts = Array.from({ length: batch }, (_, i) => [{ box: [60 + 10 * i, 80, 300, 360] as const, classIndex: 0 }]);
    const assignments = gts.map((g) => assignAtss(grid, g));
    const step = async () => {
      const loss = optimizer.minimize(() => {
        const outs = graph.execute(x, heads);
        const r = gflLoss({ outputs: outs, assignments, grid, regMax: manifest.head.regMax });
        return r.loss;
      }, true, graph.trainableVariables());
      await loss!.data();
      loss!.dispose();
    };
    // Warm-up: a few rounds, so that V8 has compiled the hot JavaScript and the lab's wasm
    // modules with its optimizing tier (they start on its baseline compiler).
    for (let w = 0; w < WARM_UP_ROUNDS; w++) {
      await runReference();
      await runExecutor();
      await step();
    }
    const ref: number[] = [];
    const exe: number[] = [];
    const train: number[] = [];
    const afterUpdate: number[] = [];
    for (let r = 0; r < repeats; r++) {
      train.push(await time(step));
      // The first forward after an update is timed apart: the wasm convolutions repack every filter
      // the update changed (tf.GraphModel's filters never change). The two forwards then swap
      // places every round.
      afterUpdate.push(await time(runExecutor));
      for (const run of r % 2 === 0 ? [runReference, runExecutor] : [runExecutor, runReference]) (run === runReference ? ref : exe).push(await time(run));
    }
    const [mr, me, mt, mu] = [median(ref), median(exe), median(train), median(afterUpdate)];
    console.log(`${batch} | ${mr.toFixed(0)} ms | ${me.toFixed(0)} ms | ${pairedRatio(exe, ref).toFixed(3)}x | ${mt.toFixed(0)} ms | ${pairedRatio(train, exe).toFixed(2)}x | ${pairedRatio(train, ref).toFixed(2)}x`);
    console.log(`  the executor's first forward after an update: ${mu.toFixed(0)} ms (${(mu - me).toFixed(0)} ms more: the filters repacked); the step against it: ${pairedRatio(train, afterUpdate).toFixed(2)}x`);
    if (threads > 1) {
      // The same forward and step on one thread, then again on all, each block timed alike.
      const block = async () => {
        const f: number[] = [];
        const t: number[] = [];
        for (let r = 0; r < repeats; r++) {
          t.push(await time(step));
          await runExecutor(); // repacks the updated filters, so the forward below times the forward alone
          f.push(await time(runExecutor));
        }
        return [median(f), median(t), pairedRatio(t, f)] as const;
      };
      setWasmThreads(1);
      await step();
      const [f1, t1, r1] = await block();
      setWasmThreads(threads);
      await step();
      const before = helperUnitCounts();
      const [fn, tn, rn] = await block();
      const share = helperShareSince(before);
      console.log(`  threads at batch ${batch}: 1 thread fwd ${f1.toFixed(0)} ms, step ${t1.toFixed(0)} ms (${r1.toFixed(2)}x); ${threads} threads fwd ${fn.toFixed(0)} ms, step ${tn.toFixed(0)} ms (${rn.toFixed(2)}x): ${(f1 / fn).toFixed(2)}x and ${(t1 / tn).toFixed(2)}x as fast; the helpers took ${(100 * share).toFixed(0)}% of the lab kernels' units`);
    }
    {
      // Convolution layers as one fused kernel (conv, bias, activation and the Pad before it, as
      // the executor runs them) against each node as its own op, alternately in this run.
      const times = { fused: { f: [] as number[], t: [] as number[] }, separate: { f: [] as number[], t: [] as number[] } };
      for (let r = 0; r < repeats; r++) {
        for (const fused of [true, false]) {
          setConvFusion(fused);
          if (r === 0) await step();
          const m = fused ? times.fused : times.separate;
          m.t.push(await time(step));
          await runExecutor();
          m.f.push(await time(runExecutor));
        }
      }
      setConvFusion(false);
      const separatePeak = (await profileStep(step)).peakBytes;
      setConvFusion(true);
      const fusedPeak = (await profileStep(step)).peakBytes;
      const [ff, ft, sf, st] = [median(times.fused.f), median(times.fused.t), median(times.separate.f), median(times.separate.t)];
      const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
      console.log(
        `  fused layers at batch ${batch}: fwd ${ff.toFixed(0)} ms, step ${ft.toFixed(0)} ms (${pairedRatio(times.fused.t, times.fused.f).toFixed(2)}x), peak ${mib(fusedPeak)}; each node its own op: fwd ${sf.toFixed(0)} ms, step ${st.toFixed(0)} ms (${pairedRatio(times.separate.t, times.separate.f).toFixed(2)}x), peak ${mib(separatePeak)}: ${(ff / sf).toFixed(2)}x and ${(ft / st).toFixed(2)}x the time`,
      );
    }
    if (top > 0) {
      console.log(`  one training step at batch ${batch}, per kernel (own time, less the kernels it runs):`);
      console.log(formatStepProfile(await profileStep(step), top).replace(/^/gm, '  '));
    }
    x.dispose();
  }
  reference.dispose();
  graph.dispose();
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
