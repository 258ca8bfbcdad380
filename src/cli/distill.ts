/**
 * `npm run distill -- --data <voc> [--methods kd,fgd] ...`: the lab's training, headless, with a
 * progress bar, a per-step log, evaluation before and after, the distilled student written out,
 * and a clean stop on Ctrl-C that keeps a checkpoint for --resume.
 */
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { normalizeClassName, VOC_ALIASES } from '../data/voc/classes';
import { listMethods } from '../distill/registry';
import { unpackCheckpoint } from '../train/checkpoint';
import type { DetectorEvalReport } from '../eval/evaluate-detector';
import { parseCli, UsageError, USAGE } from './args';
import { gradientShareLine } from '../train/gradient-shares';
import { fidelityLine } from '../eval/fidelity';
import { progressLine } from './progress';
import { runExperiment } from './run';
import { SOFTWARE_RENDERER } from '../worker/backend-types';
import { startWasm } from './wasm-threads';

const pct = (x: number | null | undefined) => (x === null || x === undefined ? '  n/a' : (100 * x).toFixed(1).padStart(5));

function table(before: DetectorEvalReport | undefined, after: DetectorEvalReport, teacher?: DetectorEvalReport): string {
  const rows = after.perClass.filter((c) => c.numGt > 0);
  const lines = [`class            ${teacher ? 'teacher ' : ''}before   after   (AP50 all-point, %)`];
  for (const c of rows) {
    const b = before?.perClass.find((x) => x.className === c.className);
    const names = new Set([c.className, ...(VOC_ALIASES[c.className as keyof typeof VOC_ALIASES] ?? [])].map(normalizeClassName));
    const t = teacher?.perClass.find((x) => names.has(normalizeClassName(x.className)));
    lines.push(`${c.className.padEnd(16)} ${teacher ? `${pct(t?.apAll)}   ` : ''}${pct(b?.apAll)}   ${pct(c.apAll)}`);
  }
  lines.push(`${'mAP (all-point)'.padEnd(16)} ${teacher ? `${pct(teacher.mapAll)}   ` : ''}${pct(before?.mapAll)}   ${pct(after.mapAll)}`);
  lines.push(`${'mAP (VOC07 11p)'.padEnd(16)} ${teacher ? `${pct(teacher.map11)}   ` : ''}${pct(before?.map11)}   ${pct(after.map11)}`);
  lines.push(`${'COCO AP'.padEnd(16)} ${teacher ? `${pct(teacher.coco.ap)}   ` : ''}${pct(before?.coco.ap)}   ${pct(after.coco.ap)}`);
  return lines.join('\n');
}

async function main() {
  let options;
  try {
    options = parseCli(process.argv.slice(2));
  } catch (error) {
    console.error(error instanceof UsageError ? error.message : String(error));
    process.exit(2);
  }
  if (options.help) {
    console.log(USAGE);
    return;
  }
  if (options.listMethods) {
    for (const m of listMethods()) console.log(`${m.id.padEnd(11)} ${m.title}\n            ${m.summary}\n            ${m.citation}\n`);
    return;
  }
  let resume;
  if (options.resume) {
    try {
      resume = unpackCheckpoint(new Uint8Array(readFileSync(options.resume)));
    } catch (error) {
      console.error(`Cannot resume from ${options.resume}: ${(error as Error).message}`);
      process.exit(2);
    }
  }
  const config = resume?.config ?? options.config;
  const dataDir = options.dataDir || config.data.source || '';
  if (options.backend === 'webgpu') {
    const { registerNodeWebGpu } = await import('../testing/node-webgpu');
    const adapter = await registerNodeWebGpu({ software: false });
    if (SOFTWARE_RENDERER.test(adapter)) process.stderr.write(`webgpu: the only adapter here is a software one (${adapter}); it runs on the CPU, far slower than --backend wasm.\n`);
    else process.stderr.write(`webgpu: ${adapter}\n`);
  }
  if (options.backend === 'wasm') {
    process.stderr.write(`wasm: ${await startWasm(options.threads)} kernel thread(s)\n`);
  } else if (!(await tf.setBackend(options.backend))) {
    console.error(`The ${options.backend} backend did not start on this machine.`);
    process.exit(1);
  }
  const controller = new AbortController();
  process.on('SIGINT', () => {
    if (controller.signal.aborted) process.exit(130);
    process.stderr.write('\nStopping after this step (Ctrl-C again to quit at once) ...\n');
    controller.abort();
  });
  const tty = process.stderr.isTTY;
  let lastLine = 0;
  const result = await runExperiment({
    config,
    dataDir,
    outDir: options.outDir,
    resume,
    overwrite: options.overwrite,
    evalTeacher: options.evalTeacher,
    evalEvery: options.evalEvery,
    weightPrecision: options.float16 ? 'float16' : 'float32',
    backend: options.backend,
    teacherCacheMiB: options.teacherCacheMiB,
    signal: controller.signal,
    onStatus: (m) => process.stderr.write(`${tty ? '\r\x1b[K' : ''}${m}\n`),
    onEvent: (e) => {
      if (e.type !== 'step') return;
      if (e.gradientNorms) process.stderr.write(`${tty ? '\r\x1b[K' : ''}${gradientShareLine(e.step - 1, e.gradientNorms)}\n`);
      const line = progressLine(e);
      if (tty) process.stderr.write(`\r\x1b[K${line}`);
      else if (e.step - lastLine >= 10 || e.step === e.totalSteps) {
        lastLine = e.step;
        process.stderr.write(`${line}\n`);
      }
    },
  });
  if (tty) process.stderr.write('\n');
  console.log(`\n${config.methods.length ? config.methods.map((m) => m.id).join(' + ') : 'plain fine-tuning'}, ${result.steps} steps${result.stopped ? ' (stopped)' : ''}, ${config.schedule.inputSize}x${config.schedule.inputSize}, on ${config.data.valSplit}:`);
  console.log(table(result.before, result.after, result.teacher));
  if (result.fidelity) {
    console.log(`\nAgreement with the teacher on ${config.data.valSplit}:`);
    if (result.fidelity.before) console.log(`  before: ${fidelityLine(result.fidelity.before)}`);
    console.log(`  after:  ${fidelityLine(result.fidelity.after)}`);
  }
  console.log(`\nWrote ${options.outDir}/student (tfjs graph model + manifest + model card: model-card.json, MODEL_CARD.md), log.jsonl, eval.json, run.json (the lab imports it into its run history), checkpoint.dlc`);
}

main().catch((error) => {
  console.error(`\ndistill failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
