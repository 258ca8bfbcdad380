/**
 * `npm run bench`: what a distillation step costs, measured in one run on this machine (not a
 * test). Milliseconds per training step broken into teacher forward, student forward + backward
 * (a plain fine-tuning step) and each method's overhead (its step minus the plain step), images
 * per second, and peak tensor memory; ratios within the run (distillation step over plain step)
 * survive a noisy shared machine better than absolute times.
 *   npm run bench -- [--backend wasm|webgpu] [--threads all|n] [--input-size 320] [--batch-size 2] [--repeats 3]
 * On wasm it runs one kernel thread per logical core, and at the end times the plain step and the
 * every-method step again on one thread (the speed-up of the cores), each method's loss and
 * gradients alone on fixed taps, and FGD's three paths.
 * webgpu is timed only where a hardware adapter exists (Dawn in Node); a software (fallback)
 * adapter is refused, since timing it says nothing about a GPU.
 *   npm run bench -- --count-kernels [--backend webgpu|wasm] [--software-input-size 64]
 * counts the kernels that run work in a plain step and with each method (what a GPU step is bound
 * by), on any adapter, SwiftShader included; no times.
 *   npm run bench -- --browser [--backend webgpu|wasm (default both)] [--software-input-size 64] [--skip-build]
 *     [--vulkan (Linux with a GPU: ANGLE on Vulkan)] [--chromium-arg=--flag ...]
 *     [--page-url http://host/bench.html (a page served elsewhere; nothing is built)]
 * times the same step in headless Chromium, in a Web Worker as the lab runs it (src/cli/bench-browser.ts).
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { formatStepProfile, profileStep } from '../graph/profile';
import { setConflictPadding } from '../graph/ops/conv-grad';
import { getMethod, METHODS, runMethods } from '../distill/registry';
import { fgd, type FgdLevelConnectors } from '../distill/fgd';
import { iterateBatches, type TrainingBatch } from '../data/pipeline';
import type { GtObject } from '../detect/assignment';
import { readDetector, disposeTaps } from '../train/detector-taps';
import { Optimizer } from '../train/optimizer';
import { createSession, type ModelHandle } from '../train/session';
import { assignBatch, distillInputs, distillStep, inputSizeOf } from '../train/step';
import type { MethodConfig } from '../train/config';
import { REPAIR_RECIPE } from '../train/repair-recipe';
import { DEFAULT_TEACHER_CACHE_MIB, TeacherCache } from '../train/teacher-cache';
import type { BackendName } from '../worker/backend-types';
import { FIXTURE_DIR, loadModel, loadSplit } from './node-lab';
import { parseThreads, setWasmThreads, startWasm } from './wasm-threads';
import { helperShareSince, helperUnitCounts } from '../graph/heap-helpers';

const { values: v } = parseArgs({
  options: {
    backend: { type: 'string' },
    browser: { type: 'boolean', default: false },
    'software-input-size': { type: 'string', default: '64' },
    'skip-build': { type: 'boolean', default: false },
    chromium: { type: 'string', default: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium' },
    'chromium-arg': { type: 'string', multiple: true, default: [] },
    vulkan: { type: 'boolean', default: false },
    'page-url': { type: 'string' },
    'input-size': { type: 'string', default: '320' },
    'batch-size': { type: 'string', default: '2' },
    repeats: { type: 'string', default: '3' },
    threads: { type: 'string' },
    data: { type: 'string', default: FIXTURE_DIR },
    'count-kernels': { type: 'boolean', default: false },
  },
});

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main() {
  if (v.browser) {
    const { benchInBrowser, VULKAN_ARGS } = await import('./bench-browser');
    await benchInBrowser({
      backends: v.backend ? [v.backend as BackendName] : ['webgpu', 'wasm'],
      inputSize: Number(v['input-size']),
      batchSize: Number(v['batch-size']),
      repeats: Number(v.repeats),
      methods: METHODS.map((m) => m.id),
      softwareInputSize: Number(v['software-input-size']),
      chromium: v.chromium!,
      skipBuild: v['skip-build']!,
      chromiumArgs: [...(v.vulkan ? VULKAN_ARGS : []), ...v['chromium-arg']!],
      pageUrl: v['page-url'],
      runTimeoutS: 900,
    });
    return;
  }
  v.backend ??= 'wasm';
  if (v['count-kernels']) {
    // Counts need no real GPU: on a software adapter they are those of any GPU.
    if (v.backend === 'webgpu') await (await import('../testing/node-webgpu')).registerNodeWebGpu({ software: true });
    if (v.backend === 'wasm') await startWasm(1);
    else if (!(await tf.setBackend(v.backend))) throw new Error(`Backend ${v.backend} is not available.`);
    await countDispatches(Number(v['software-input-size']));
    return;
  }
  if (v.backend === 'webgpu') {
    const { registerNodeWebGpu } = await import('../testing/node-webgpu');
    const adapter = await registerNodeWebGpu({ software: false });
    const fallback = /swiftshader/i.test(adapter);
    if (fallback) {
      console.log(`webgpu: the only adapter here is a software one (${adapter}); timing it would not describe a GPU. Skipped (--count-kernels counts the kernels each step dispatches, which holds on any GPU).`);
      return;
    }
  }
  const threads = v.backend === 'wasm' ? await startWasm(parseThreads(v.threads)) : 0;
  if (v.backend !== 'wasm' && !(await tf.setBackend(v.backend!))) throw new Error(`Backend ${v.backend} is not available.`);
  const inputSize = Number(v['input-size']);
  const batchSize = Number(v['batch-size']);
  const repeats = Number(v.repeats);
  const { teacher, student, batch } = await loadBench(inputSize, batchSize);

  const timeIt = async (f: () => Promise<void>) => {
    await f(); // warm-up: kernels compiled, slots created
    const times: number[] = [];
    for (let r = 0; r < repeats; r++) {
      const t0 = performance.now();
      await f();
      times.push(performance.now() - t0);
    }
    const peak = (await tf.profile(f)).peakBytes;
    return { ms: median(times), peak };
  };
  const runTeacher = async () => {
    const taps = readDetector(teacher.graph, teacher.manifest, batch.input);
    await Promise.all(taps.raw.map((t) => t.data()));
    disposeTaps(taps);
  };
  const teacherForward = await timeIt(runTeacher);
  const teacherKernels = await profileStep(runTeacher);
  const stepper = (methods: MethodConfig[]) => benchStepper(teacher, student, batch, methods);
  const plainStepper = stepper([]);
  /**
   * A method's step against the plain step, the two timed alternately (plain, method, plain,
   * method, ...): a machine that slows down or speeds up during the run moves both alike, so the
   * ratio holds where two blocks timed minutes apart would not.
   */
  const againstPlain = async (methods: MethodConfig[], cached = false) => {
    const s = benchStepper(teacher, student, batch, methods, cached);
    try {
      await plainStepper.step();
      await s.step(); // warm-up: kernels compiled, connectors and optimiser slots created
      // Both steps timed as they run in training: under tf.profile every kernel's shapes, bytes
      // and time are recorded, which costs the step with more kernels more (1.53x against 1.40x
      // for every method, measured alternately).
      const times = await timeAlternately({ plain: plainStepper.step, method: s.step }, repeats);
      // Kernels per step (what a GPU pays for in dispatches, whatever its arithmetic) and peak memory, from one more step, profiled.
      const { kernelCount, workCount, peakBytes } = await profileStep(s.step);
      return { ms: times.method, plainMs: times.plain, peak: peakBytes, kernels: kernelCount, work: workCount };
    } finally {
      s.dispose();
    }
  };
  const plain = await timeIt(plainStepper.step);
  const profiled = async (title: string, s: { step: () => Promise<void> }) => {
    await s.step();
    const profile = await profileStep(s.step);
    console.log(`${title}, per kernel:\n${formatStepProfile(profile, 10)}`);
    return profile;
  };
  // Where the time goes (forward, backprop, outside kernels): a plain step, then one with every method.
  const plainKernels = await profiled('One plain step (student fwd+bwd)', plainStepper);
  const everyMethod = stepper(METHODS.map((m) => ({ id: m.id })));
  try {
    await profiled(`One step with all ${METHODS.length} methods`, everyMethod);
  } finally {
    everyMethod.dispose();
  }
  const rows: [string, { ms: number; plainMs: number; peak: number; kernels: number; work: number; cached: boolean }][] = [];
  for (const [name, methods, cached] of benchRows()) rows.push([name, { ...(await againstPlain(methods, cached)), cached: !!cached }]);
  let threadLine = '';
  if (threads > 1) {
    // The plain and the every-method step on one thread, then on all, each pair timed alternately.
    setWasmThreads(1);
    const one = await againstPlain(METHODS.map((m) => ({ id: m.id })));
    setWasmThreads(threads);
    const before = helperUnitCounts();
    const all = await againstPlain(METHODS.map((m) => ({ id: m.id })));
    const share = helperShareSince(before);
    threadLine = `threads: 1 thread plain ${one.plainMs.toFixed(0)} ms, all ${METHODS.length} methods ${one.ms.toFixed(0)} ms (${(one.ms / one.plainMs).toFixed(2)}x); ${threads} threads plain ${all.plainMs.toFixed(0)} ms, all ${METHODS.length} ${all.ms.toFixed(0)} ms (${(all.ms / all.plainMs).toFixed(2)}x): ${threads} threads run the plain step ${(one.plainMs / all.plainMs).toFixed(2)}x and the every-method step ${(one.ms / all.ms).toFixed(2)}x as fast as 1; the helper threads took ${(100 * share).toFixed(0)}% of the lab's kernels' units`;
  }
  const conflictLine = await conflictFreeProducts(plainStepper.step, repeats);
  plainStepper.dispose();
  const aloneLine = await methodsAlone(teacher, student, batch, repeats);
  const fgdLine = await fgdPaths(teacher, student, batch, repeats);
  const mb = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
  console.log(`Distillation step cost on ${tf.getBackend()}${threads ? ` (${threads} kernel thread${threads === 1 ? '' : 's'})` : ''}, NanoDet-g → default student, batch ${batchSize} at ${inputSize}x${inputSize}, median of ${repeats}`);
  console.log(`teacher forward                  ${teacherForward.ms.toFixed(0)} ms   peak ${mb(teacherForward.peak)}   ${teacherKernels.kernelCount} kernels (${teacherKernels.workCount} run work)`);
  console.log(`student fwd+bwd (plain step)     ${plain.ms.toFixed(0)} ms   peak ${mb(plain.peak)}   ${((batchSize * 1000) / plain.ms).toFixed(2)} img/s   ${plainKernels.kernelCount} kernels (${plainKernels.workCount} run work)`);
  console.log('each row: the method\'s step and a plain step, timed alternately; the ratio is between the two');
  console.log('method          step ms   plain ms   overhead ms (step − plain − teacher fwd, none when cached)   step / plain   img/s   peak      kernels (plain + teacher + method), of which run work (Reshape and Identity do not)');
  for (const [id, r] of rows) {
    // A cached row runs no teacher forward.
    const overhead = r.ms - r.plainMs - (r.cached ? 0 : teacherForward.ms);
    console.log(`${id.padEnd(15)} ${r.ms.toFixed(0).padStart(7)}   ${r.plainMs.toFixed(0).padStart(8)}   ${overhead.toFixed(0).padStart(8)}${' '.repeat(36)}${(r.ms / r.plainMs).toFixed(2).padStart(6)}x   ${((batchSize * 1000) / r.ms).toFixed(2).padStart(5)}   ${mb(r.peak).padEnd(9)} ${r.kernels} (+${r.kernels - plainKernels.kernelCount}), ${r.work} (+${r.work - plainKernels.workCount})`);
  }
  if (threadLine) console.log(threadLine);
  console.log(conflictLine);
  console.log(aloneLine);
  console.log(fgdLine);
  batch.input.dispose();
  teacher.graph.dispose();
  student.graph.dispose();
}

/** The models the bench steps (the teacher and the install-time student) and one batch of the data. */
async function loadBench(inputSize: number, batchSize: number): Promise<{ teacher: ModelHandle; student: ModelHandle; batch: TrainingBatch }> {
  const teacher = loadModel('nanodet.manifest.json', { trainable: false, name: 'teacher' });
  const student = loadModel('nanodet-student.manifest.json', { trainable: true, name: 'student' });
  const { dataset, loadImage } = await loadSplit(v.data!, 'train', student.manifest.classes);
  const first = await iterateBatches(dataset.images, loadImage, student.manifest, { batchSize, seed: 1, inputSize, dropLast: true }).next();
  if (first.done) throw new Error('No batch.');
  return { teacher, student, batch: first.value };
}

/**
 * A session stepping the student at lr 0 (the weights stay as loaded), with `methods`; with
 * `cached`, the teacher's taps come from a teacher cache (the batch repeats, so every step after
 * the first is served from it, as every visit after an image's first is in a run).
 */
function benchStepper(teacher: ModelHandle, student: ModelHandle, batch: TrainingBatch, methods: MethodConfig[], cached = false) {
  const session = createSession({ teacher: methods.length ? teacher : null, student, methods, detectionWeight: 1 });
  const optimizer = new Optimizer('adam');
  const teacherCache = cached ? new TeacherCache(DEFAULT_TEACHER_CACHE_MIB * 2 ** 20, session.teacherFeatures) : undefined;
  return {
    step: async () => {
      await distillStep(session, optimizer, batch, { lr: 0, clipNorm: 35, teacherCache });
    },
    dispose: () => {
      session.dispose();
      optimizer.dispose();
      teacherCache?.dispose();
    },
  };
}

type BenchRow = [name: string, methods: MethodConfig[], cached?: boolean];

/** The rows each bench measures against a plain step: each method, every method, and the lab's default experiment (the repair recipe). */
function benchRows(): BenchRow[] {
  const all = () => METHODS.map((m) => ({ id: m.id }));
  const recipe = () => REPAIR_RECIPE.methods.map((m) => ({ ...m }));
  return [
    ...METHODS.map((m): BenchRow => [m.id, [{ id: m.id }]]),
    [`all ${METHODS.length}`, all()],
    ['recipe', recipe()],
    // The same with the teacher's taps from its cache: a step of a run whose images were seen before.
    [`all ${METHODS.length}, cached`, all(), true],
    ['recipe, cached', recipe(), true],
  ];
}

/**
 * The kernels that run work in one step, plain and with each method, at a tiny size on the
 * current backend (a software WebGPU adapter: the counts hold on any GPU, the times would not).
 */
async function countDispatches(inputSize: number): Promise<void> {
  const { teacher, student, batch } = await loadBench(inputSize, 1);
  console.log(`kernels that run work per step on ${tf.getBackend()}, NanoDet-g → default student (the counts do not depend on the size; batch 1 at ${inputSize}x${inputSize})`);
  let plain = 0;
  for (const [name, methods, cached] of [['plain', []] as BenchRow, ...benchRows()]) {
    const s = benchStepper(teacher, student, batch, methods, cached);
    try {
      await s.step();
      const { workCount } = await profileStep(s.step);
      plain ||= workCount;
      console.log(`${name.padEnd(15)} ${String(workCount).padStart(6)}${name === 'plain' ? '' : `   (+${workCount - plain}, ${(workCount / plain).toFixed(2)}x the plain step's)`}`);
    } finally {
      s.dispose();
    }
  }
  batch.input.dispose();
  teacher.graph.dispose();
  student.graph.dispose();
}

/**
 * The plain step with the filter gradients' transposes over conflict-free position counts (as
 * training runs them, `conflictFreeRows`, `conflictFreeGrid`) against the counts as they come,
 * timed alternately: what the zeros buy at this input size (feature maps of 256 or 320 px
 * transpose slowly on wasm).
 */
async function conflictFreeProducts(step: () => Promise<void>, repeats: number): Promise<string> {
  const withPadding = (on: boolean) => async () => {
    setConflictPadding(on);
    await step();
  };
  try {
    await withPadding(false)(); // warm-up: the other shapes' kernels
    const { free, asIs } = await timeAlternately({ free: withPadding(true), asIs: withPadding(false) }, repeats);
    return `conflict-free filter-gradient transposes (zero rows or a zero column where a transpose would thrash the cache): plain step ${free.toFixed(0)} ms, with the position counts as they come ${asIs.toFixed(0)} ms: ${(free / asIs).toFixed(2)}x the time`;
  } finally {
    setConflictPadding(true);
  }
}

/** The median time of each of `ways`, run in turn `repeats` times (a, b, a, b, ...): load changes move all alike. */
async function timeAlternately<K extends string>(ways: Record<K, () => Promise<void>>, repeats: number): Promise<Record<K, number>> {
  const entries = Object.entries(ways) as [K, () => Promise<void>][];
  const times = new Map<K, number[]>(entries.map(([k]) => [k, []]));
  for (let r = 0; r < repeats; r++) {
    for (const [k, run] of entries) {
      const t0 = performance.now();
      await run();
      times.get(k)!.push(performance.now() - t0);
    }
  }
  return Object.fromEntries(entries.map(([k]) => [k, median(times.get(k)!)])) as Record<K, number>;
}

/**
 * Each method's loss and gradients alone, and all of them together, on this batch's taps (the
 * teacher's and the student's, fixed; the student's as variables, so the gradients stop there),
 * timed alternately: what each method costs a step without the step's own noise around it.
 */
async function methodsAlone(teacher: ModelHandle, student: ModelHandle, batch: TrainingBatch, repeats: number): Promise<string> {
  const ids = METHODS.map((m) => m.id);
  const sessions = [...ids.map((id) => [id]), ids].map((group) => createSession({ teacher, student, methods: group.map((id) => ({ id })), detectionWeight: 1 }));
  const every = sessions[sessions.length - 1]!;
  const tapsT = readDetector(teacher.graph, teacher.manifest, batch.input, every.teacherRead);
  const read = readDetector(student.graph, student.manifest, batch.input, every.studentRead);
  const asVariables = (ts: tf.Tensor4D[], group: string) => ts.map((t, i) => tf.variable(t, true, `bench_alone_${group}_${i}`) as unknown as tf.Tensor4D);
  const tapsS = { ...read, backbone: asVariables(read.backbone, 'stage'), neck: asVariables(read.neck, 'neck'), head: asVariables(read.head, 'head'), cls: asVariables(read.cls, 'cls'), box: asVariables(read.box, 'box'), raw: asVariables(read.raw, 'raw') };
  const studentVariables = [...tapsS.backbone, ...tapsS.neck, ...tapsS.head, ...tapsS.cls, ...tapsS.box, ...tapsS.raw] as unknown as tf.Variable[];
  const assignments = assignBatch(every, batch);
  const run = (session: (typeof sessions)[number]) => async () => {
    const { value, grads } = tf.variableGrads(() => runMethods(session.methods, distillInputs(session, tapsT, tapsS, assignments)).loss, [...studentVariables, ...session.methods.flatMap((m) => m.variables)]);
    await value.data();
    tf.dispose([value, ...Object.values(grads)]);
  };
  try {
    const ways = Object.fromEntries(sessions.map((s, i) => [i === sessions.length - 1 ? 'all' : ids[i]!, run(s)])) as Record<string, () => Promise<void>>;
    for (const w of Object.values(ways)) await w(); // warm-up: kernels compiled, connectors' slots made
    const ms = await timeAlternately(ways, Math.max(repeats, 5));
    const sum = ids.reduce((a, id) => a + ms[id]!, 0);
    return `each method's loss and gradients alone on these taps: ${ids.map((id) => `${id} ${ms[id]!.toFixed(1)}`).join(', ')} ms; all ${ids.length} together ${ms['all']!.toFixed(1)} ms (their sum ${sum.toFixed(1)})`;
  } finally {
    sessions.forEach((s) => s.dispose());
    tf.dispose(studentVariables);
    disposeTaps(tapsT);
    disposeTaps(read);
  }
}

/**
 * FGD's loss and gradients on this batch's real neck outputs by its three paths, timed
 * alternately: every level at once (the path GPU backends take), each level as one op with its
 * gradient written out (the others'), and each op differentiated by tfjs (what the maps use):
 * what the choice in `fgd` rests on.
 */
async function fgdPaths(teacher: ModelHandle, student: ModelHandle, batch: TrainingBatch, repeats: number): Promise<string> {
  const tapsT = readDetector(teacher.graph, teacher.manifest, batch.input);
  const tapsS = readDetector(student.graph, student.manifest, batch.input);
  const entry = getMethod('fgd');
  const connectors = entry.createConnectors({ neck: { teacher: tapsT.neck.map((t) => t.shape[3]), student: tapsS.neck.map((t) => t.shape[3]) } }, entry.defaults) as FgdLevelConnectors[];
  const featS = tapsS.neck.map((t, l) => tf.variable(t, true, `bench_fgd_neck_${l}`));
  const variables = [...featS, ...connectors.flatMap((c) => [c.align, c.gcS, c.gcT].flatMap((x) => x?.variables ?? []))];
  const size = inputSizeOf(batch, student.manifest.input.layout);
  const gtBoxes = batch.gts.map((g) => g.map((o: GtObject) => o.box));
  type Path = 'joined' | 'fused' | 'ops';
  const run = (path: Path) => async () => {
    const options = { joined: path === 'joined', fused: path === 'fused' };
    const { value, grads } = tf.variableGrads(() => fgd({ featT: tapsT.neck, featS: featS as unknown as tf.Tensor4D[], gtBoxes, inputSize: size, connectors }, {}, options).loss, variables);
    await value.data();
    tf.dispose([value, ...Object.values(grads)]);
  };
  try {
    const paths: Path[] = ['joined', 'fused', 'ops'];
    const kernels = {} as Record<Path, number>;
    for (const path of paths) kernels[path] = (await profileStep(run(path))).workCount;
    const ms = await timeAlternately({ joined: run('joined'), fused: run('fused'), ops: run('ops') }, Math.max(repeats, 5));
    const row = (label: string, path: Path) => `${label} ${ms[path].toFixed(1)} ms (${kernels[path]} kernels that run work)`;
    return `fgd alone, its loss and gradients on these neck outputs on ${tf.getBackend()}: ${row('every level at once', 'joined')}, ${row('each level as one op', 'fused')}, ${row('op by op', 'ops')}`;
  } finally {
    entry.connectorList(connectors).forEach((c) => c.dispose());
    tf.dispose(featS);
    disposeTaps(tapsT);
    disposeTaps(tapsS);
  }
}

main().catch((error) => {
  console.error(`bench failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
