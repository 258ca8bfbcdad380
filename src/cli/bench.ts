/**
 * `npm run bench`: what a distillation step costs, measured in one run on this machine (not a
 * test). Milliseconds per training step broken into teacher forward, student forward + backward
 * (a plain fine-tuning step) and each method's overhead (its step minus the plain step), images
 * per second, and peak tensor memory; ratios within the run (distillation step over plain step)
 * survive a noisy shared machine better than absolute times.
 *   npm run bench -- [--backend wasm|webgpu] [--input-size 320] [--batch-size 2] [--repeats 3]
 * webgpu runs only where a hardware adapter exists (Dawn in Node); a software (fallback) adapter
 * is refused, since timing it says nothing about a GPU.
 *   npm run bench -- --browser [--backend webgpu|wasm (default both)] [--software-input-size 64] [--skip-build]
 *     [--vulkan (Linux with a GPU: ANGLE on Vulkan)] [--chromium-arg=--flag ...]
 *     [--page-url http://host/bench.html (a page served elsewhere; nothing is built)]
 * times the same step in headless Chromium, in a Web Worker as the lab runs it (src/cli/bench-browser.ts).
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { formatStepProfile, profileStep } from '../graph/profile';
import { METHODS } from '../distill/registry';
import { iterateBatches } from '../data/pipeline';
import { readDetector, disposeTaps } from '../train/detector-taps';
import { Optimizer } from '../train/optimizer';
import { createSession, type ModelHandle } from '../train/session';
import { distillStep } from '../train/step';
import type { MethodConfig } from '../train/config';
import type { BackendName } from '../worker/backend-types';
import { FIXTURE_DIR, loadModel, loadSplit } from './node-lab';

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
    data: { type: 'string', default: FIXTURE_DIR },
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
  if (v.backend === 'webgpu') {
    const { registerNodeWebGpu } = await import('../testing/node-webgpu');
    const adapter = await registerNodeWebGpu({ software: false });
    const fallback = /swiftshader/i.test(adapter);
    if (fallback) {
      console.log(`webgpu: the only adapter here is a software one (${adapter}); timing it would not describe a GPU. Skipped.`);
      return;
    }
  }
  if (!(await tf.setBackend(v.backend!))) throw new Error(`Backend ${v.backend} is not available.`);
  const inputSize = Number(v['input-size']);
  const batchSize = Number(v['batch-size']);
  const repeats = Number(v.repeats);
  const teacher: ModelHandle = loadModel('nanodet.manifest.json', { trainable: false, name: 'teacher' });
  const student: ModelHandle = loadModel('nanodet-student.manifest.json', { trainable: true, name: 'student' });
  const { dataset, loadImage } = await loadSplit(v.data!, 'train', student.manifest.classes);
  const batches = iterateBatches(dataset.images, loadImage, student.manifest, { batchSize, seed: 1, inputSize, dropLast: true });
  const first = await batches.next();
  if (first.done) throw new Error('No batch.');
  const batch = first.value;

  const timeIt = async (f: () => Promise<void>) => {
    await f(); // warm-up: kernels compiled, slots created
    const times: number[] = [];
    let peak = 0;
    for (let r = 0; r < repeats; r++) {
      const t0 = performance.now();
      const info = await tf.profile(f);
      times.push(performance.now() - t0);
      peak = Math.max(peak, info.peakBytes);
    }
    return { ms: median(times), peak };
  };
  const teacherForward = await timeIt(async () => {
    const taps = readDetector(teacher.graph, teacher.manifest, batch.input);
    await Promise.all(taps.raw.map((t) => t.data()));
    disposeTaps(taps);
  });
  const stepWith = async (methods: MethodConfig[], detectionWeight = 1) => {
    const session = createSession({ teacher: methods.length ? teacher : null, student, methods, detectionWeight });
    const optimizer = new Optimizer('adam');
    const saved = [...student.graph.variables].map(([k, w]) => [k, w.clone()] as const);
    try {
      return await timeIt(async () => {
        await distillStep(session, optimizer, batch, { lr: 0, clipNorm: 35 });
      });
    } finally {
      for (const [k, w] of saved) {
        student.graph.variables.get(k)!.assign(w);
        w.dispose();
      }
      session.dispose();
      optimizer.dispose();
    }
  };
  const plain = await stepWith([]);
  {
    // One plain step, per kernel: where the time goes (forward, backprop, outside kernels).
    const session = createSession({ teacher: null, student, methods: [], detectionWeight: 1 });
    const optimizer = new Optimizer('adam');
    const saved = [...student.graph.variables].map(([k, w]) => [k, w.clone()] as const);
    try {
      await distillStep(session, optimizer, batch, { lr: 0, clipNorm: 35 });
      const profile = await profileStep(() => distillStep(session, optimizer, batch, { lr: 0, clipNorm: 35 }));
      console.log(`One plain step (student fwd+bwd), per kernel:\n${formatStepProfile(profile, 10)}`);
    } finally {
      for (const [k, w] of saved) {
        student.graph.variables.get(k)!.assign(w);
        w.dispose();
      }
      session.dispose();
      optimizer.dispose();
    }
  }
  const rows: [string, { ms: number; peak: number }][] = [];
  for (const m of METHODS) rows.push([m.id, await stepWith([{ id: m.id }])]);
  const all = await stepWith(METHODS.map((m) => ({ id: m.id })));
  const mb = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
  console.log(`Distillation step cost on ${tf.getBackend()}, NanoDet-g → default student, batch ${batchSize} at ${inputSize}x${inputSize}, median of ${repeats}`);
  console.log(`teacher forward                  ${teacherForward.ms.toFixed(0)} ms   peak ${mb(teacherForward.peak)}`);
  console.log(`student fwd+bwd (plain step)     ${plain.ms.toFixed(0)} ms   peak ${mb(plain.peak)}   ${((batchSize * 1000) / plain.ms).toFixed(2)} img/s`);
  console.log('method        step ms   overhead ms (step − plain − teacher fwd)   step / plain   img/s   peak');
  for (const [id, r] of [...rows, [`all ${METHODS.length}`, all] as [string, { ms: number; peak: number }]]) {
    const overhead = r.ms - plain.ms - teacherForward.ms;
    console.log(`${id.padEnd(13)} ${r.ms.toFixed(0).padStart(7)}   ${overhead.toFixed(0).padStart(8)}${' '.repeat(36)}${(r.ms / plain.ms).toFixed(2).padStart(6)}x   ${((batchSize * 1000) / r.ms).toFixed(2).padStart(5)}   ${mb(r.peak)}`);
  }
  batch.input.dispose();
  teacher.graph.dispose();
  student.graph.dispose();
}

main().catch((error) => {
  console.error(`bench failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
