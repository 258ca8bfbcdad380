/**
 * A short distillation run per method, distillation loss only (no detection loss), to see each
 * method's own terms move: for every method alone and for all together, N steps on a split,
 * printing each term's mean over the first and the last quarter of the steps and whether every
 * term stayed finite.
 *   npm run terms -- --data ../shared/voc-fixture [--steps 12] [--input-size 256] [--batch-size 2] [--only kd,rm]
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { METHODS } from '../distill/registry';
import { defaultExperiment, type MethodConfig } from '../train/config';
import { Optimizer } from '../train/optimizer';
import { createSession } from '../train/session';
import { train } from '../train/trainer';
import { FIXTURE_DIR, loadModel, loadSplit } from './node-lab';
import { parseThreads, startWasm } from './wasm-threads';

const { values: v } = parseArgs({
  options: {
    data: { type: 'string', default: FIXTURE_DIR },
    split: { type: 'string', default: 'train' },
    steps: { type: 'string', default: '12' },
    'input-size': { type: 'string', default: '256' },
    'batch-size': { type: 'string', default: '2' },
    lr: { type: 'string', default: '1e-4' },
    only: { type: 'string' },
    threads: { type: 'string' },
  },
});

async function main() {
  await startWasm(parseThreads(v.threads));
  const teacher = loadModel('nanodet.manifest.json', { trainable: false, name: 'teacher' });
  const student = loadModel('nanodet-student.manifest.json', { trainable: true, name: 'student' });
  const initial = new Map([...student.graph.variables].map(([k, w]) => [k, w.clone()]));
  const { dataset, loadImage } = await loadSplit(v.data!, v.split!, student.manifest.classes);
  const batchSize = Number(v['batch-size']);
  const steps = Number(v.steps);
  const epochs = Math.ceil((steps * batchSize) / dataset.images.length);
  const images = dataset.images.slice(0, Math.min(dataset.images.length, Math.ceil(steps / epochs) * batchSize));
  const runs: { label: string; methods: MethodConfig[] }[] = [...METHODS.map((m) => ({ label: m.id, methods: [{ id: m.id }] })), { label: 'all', methods: METHODS.map((m) => ({ id: m.id })) }].filter(
    (r) => !v.only || v.only.split(',').includes(r.label),
  );
  console.log(`Distillation loss only, ${steps} steps, batch ${batchSize}, ${v['input-size']}px, adam lr ${v.lr}, on ${images.length} images of "${v.split}" (wasm):`);
  for (const run of runs) {
    for (const [k, w] of student.graph.variables) w.assign(initial.get(k)!);
    const session = createSession({ teacher, student, methods: run.methods, detectionWeight: 0, seed: 1 });
    const optimizer = new Optimizer('adam', { weightDecay: 0 });
    const log: Record<string, number>[] = [];
    let finite = true;
    const config = { ...defaultExperiment(), methods: run.methods, detectionWeight: 0, checkpointEvery: 0, schedule: { ...defaultExperiment().schedule, epochs, batchSize, inputSize: Number(v['input-size']), lr: Number(v.lr), warmupSteps: 0 } };
    await train({
      session,
      optimizer,
      config,
      images,
      loadImage,
      onEvent: (e) => {
        if (e.type !== 'step') return;
        log.push(e.terms);
        finite &&= e.applied && Object.values(e.terms).every(Number.isFinite);
      },
    });
    const q = Math.max(1, Math.floor(log.length / 4));
    const mean = (rows: Record<string, number>[], k: string) => rows.reduce((s, r) => s + (r[k] ?? 0), 0) / rows.length;
    const names = Object.keys(log[0] ?? {}).filter((k) => k.includes('/') || run.methods.some((m) => m.id === k));
    const parts = names.map((k) => {
      const a = mean(log.slice(0, q), k);
      const b = mean(log.slice(-q), k);
      return `${k} ${a.toPrecision(3)} → ${b.toPrecision(3)}${b < a ? '' : ' (not lower)'}`;
    });
    console.log(`${run.label.padEnd(10)} ${log.length} steps, all finite: ${finite ? 'yes' : 'NO'}; ${parts.join('; ')}`);
    session.dispose();
    optimizer.dispose();
  }
  tf.dispose([...initial.values()]);
  teacher.graph.dispose();
  student.graph.dispose();
}

main().catch((error) => {
  console.error(`terms failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
