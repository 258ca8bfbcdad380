/**
 * The reproducible experiment: one student distilled from NanoDet-g and evaluated on images the
 * runs never train on, once with plain fine-tuning, once per method (each with the detection
 * loss), once with every method together and once with the repair recipe (the lab's default
 * experiment), all with the same schedule, steps and seed. Writes a results table: mAP, gain over
 * plain fine-tuning, the fraction of the teacher–student gap closed, steps, wall time, and each
 * loss part's share of the gradient at the first step.
 *   npm run experiment -- --data ../shared/voc-fixture [--student runs/s/manifest.json]
 *     [--unlabeled ../shared/voc-unlabeled --train-split none --val-split trainval] [--epochs 6]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { METHODS } from '../distill/registry';
import { defaultExperiment, repairRecipe, type ExperimentConfig, type MethodConfig, type ScheduleConfig } from '../train/config';
import { gradientShares } from '../train/gradient-shares';
import type { DetectorEvalReport } from '../eval/evaluate-detector';
import type { FidelityReport } from '../eval/fidelity';
import { loadModel } from './node-lab';
import { progressLine } from './progress';
import { evaluateModel, fidelityOnSplit, runExperiment, type RunResult } from './run';

const USAGE =
  'Usage: npm run experiment -- --data <VOC folder> [--student <manifest>] [--unlabeled <photo folder>] [--max-unlabeled n] [--train-split train|none] [--val-split val] [--epochs 6 | --steps n] [--batch-size 4] [--input-size 320] [--lr 1e-4] [--only finetune,kd,...,all,recipe] [--out experiments/fixture]';

const { values: v } = parseArgs({
  options: {
    data: { type: 'string' },
    student: { type: 'string' },
    unlabeled: { type: 'string' },
    'max-unlabeled': { type: 'string' },
    'train-split': { type: 'string', default: 'train' },
    'val-split': { type: 'string', default: 'val' },
    epochs: { type: 'string', default: '6' },
    steps: { type: 'string' },
    'batch-size': { type: 'string', default: '4' },
    'input-size': { type: 'string', default: '320' },
    lr: { type: 'string', default: '1e-4' },
    ema: { type: 'string' },
    'annotated-per-batch': { type: 'string' },
    only: { type: 'string' },
    out: { type: 'string', default: 'experiments/fixture' },
  },
});

if (!v.data) {
  console.error(USAGE);
  process.exit(2);
}

interface Row {
  label: string;
  methods: string[];
  mapAll: number | null;
  map11: number | null;
  cocoAp: number | null;
  steps: number;
  seconds: number;
  trend: RunResult['termTrend'];
  /** Each part's share of the gradient at the first step. */
  shares: { part: string; share: number }[];
  /** Agreement with the teacher on the evaluation split, after training. */
  fidelity?: FidelityReport;
}

interface Run {
  label: string;
  title: string;
  methods: MethodConfig[];
  detectionWeight: number;
  lr?: number;
  /** The row's own weight average and annotated images per batch (the recipe's). */
  ema?: number;
  annotatedPerBatch?: number;
}

const pct = (x: number | null | undefined) => (x === null || x === undefined ? 'n/a' : (100 * x).toFixed(1));

async function main() {
  await tf.setBackend('wasm');
  const base = defaultExperiment();
  const recipe = repairRecipe();
  const studentName = v.student ?? base.student;
  const schedule = { ...base.schedule, steps: v.steps ? Number(v.steps) : undefined, epochs: Number(v.epochs), batchSize: Number(v['batch-size']), inputSize: Number(v['input-size']), lr: Number(v.lr), ...(v.ema ? { ema: Number(v.ema) } : {}) };
  const runs: Run[] = [
    { label: 'finetune', title: 'plain fine-tuning (GFL loss only)', methods: [], detectionWeight: 1 },
    ...METHODS.map((m) => ({ label: m.id, title: `${m.id} + GFL loss`, methods: [{ id: m.id }], detectionWeight: 1 })),
    { label: 'all', title: `all ${METHODS.length} methods + GFL loss`, methods: METHODS.map((m) => ({ id: m.id })), detectionWeight: 1 },
    { label: 'recipe', title: `repair recipe: ${recipe.methods.map((m) => (m.scale && m.scale !== 1 ? `${m.id} ×${m.scale}` : m.id)).join(' + ')}${recipe.detectionWeight ? ' + GFL loss' : ''}, lr ${recipe.schedule.lr}, weight average ${recipe.schedule.ema}, ${recipe.data.annotatedPerBatch} annotated images per batch`, methods: recipe.methods, detectionWeight: recipe.detectionWeight, lr: recipe.schedule.lr, ema: recipe.schedule.ema, annotatedPerBatch: recipe.data.annotatedPerBatch },
  ].filter((r) => !v.only || v.only.split(',').includes(r.label));
  mkdirSync(v.out!, { recursive: true });

  const teacher = loadModel(base.teacher, { trainable: false, name: 'teacher-eval' });
  const teacherReport = await evaluateModel(teacher, v.data!, v['val-split']!, schedule.inputSize);
  const student = loadModel(studentName, { trainable: false, name: 'student-eval' });
  const studentReport = await evaluateModel(student, v.data!, v['val-split']!, schedule.inputSize);
  const studentTitle = student.manifest.name;
  const fidelityBefore = await fidelityOnSplit(teacher, student, v.data!, v['val-split']!, schedule.inputSize);
  teacher.graph.dispose();
  student.graph.dispose();
  console.log(`teacher mAP ${pct(teacherReport.mapAll)}, student before training ${pct(studentReport.mapAll)} (all-point, ${v['val-split']}, ${schedule.inputSize}px)`);

  const rows: Row[] = [];
  for (const run of runs) {
    const config: ExperimentConfig = {
      ...base,
      student: studentName,
      methods: run.methods,
      detectionWeight: run.detectionWeight,
      schedule: { ...schedule, lr: run.lr ?? schedule.lr, ...(run.ema !== undefined ? { ema: run.ema } : {}) },
      checkpointEvery: 0,
      // Shares at the first step only: one extra forward and backward per part.
      gradientNormsEvery: 1_000_000,
      data: {
        ...base.data,
        trainSplit: v['train-split']!,
        valSplit: v['val-split']!,
        unlabeled: v.unlabeled,
        maxUnlabeled: v['max-unlabeled'] ? Number(v['max-unlabeled']) : undefined,
        ...(run.annotatedPerBatch !== undefined || v['annotated-per-batch'] ? { annotatedPerBatch: run.annotatedPerBatch ?? Number(v['annotated-per-batch']) } : {}),
      },
    };
    const t0 = performance.now();
    let shares: Row['shares'] = [];
    const result = await runExperiment({
      config,
      dataDir: v.data!,
      evalBefore: false,
      fidelity: true,
      onEvent: (e) => {
        if (e.type !== 'step') return;
        if (e.gradientNorms) shares = gradientShares(e.gradientNorms).map(({ part, share }) => ({ part, share }));
        if (e.step % 10 === 0 || e.step === e.totalSteps) console.error(`${run.label.padEnd(10)} ${progressLine(e)}`);
      },
    });
    const row: Row = { label: run.label, methods: run.methods.map((m) => m.id as string), mapAll: result.after.mapAll, map11: result.after.map11, cocoAp: result.after.coco.ap, steps: result.steps, seconds: (performance.now() - t0) / 1000, trend: result.termTrend, shares, fidelity: result.fidelity?.after };
    rows.push(row);
    console.log(`${run.label}: mAP ${pct(row.mapAll)} (${row.steps} steps, ${row.seconds.toFixed(0)} s)`);
    // Written after every run, so a long experiment that is stopped still leaves its table.
    writeResults(rows, runs, teacherReport, studentReport, fidelityBefore, schedule, studentTitle);
  }

  const md = writeResults(rows, runs, teacherReport, studentReport, fidelityBefore, schedule, studentTitle);
  console.log(`\n${md}\nWrote ${v.out}/results.md and results.json`);
}

/** The student's score at the teacher's object locations, as a share of the teacher's, and their top-class agreement. */
function agreement(f: FidelityReport | undefined): string {
  if (!f || f.teacherScore === null || f.studentScore === null || f.sameTopClass === null) return ' | ';
  return `${((100 * f.studentScore) / f.teacherScore).toFixed(0)}% | ${(100 * f.sameTopClass).toFixed(1)}%`;
}

function writeResults(rows: Row[], runs: Run[], teacherReport: DetectorEvalReport, studentReport: DetectorEvalReport, fidelityBefore: FidelityReport, schedule: ScheduleConfig, studentTitle: string): string {
  const ft = rows.find((r) => r.label === 'finetune')?.mapAll ?? null;
  const teacherMap = teacherReport.mapAll;
  const before = studentReport.mapAll;
  const lines = [
    `| run | mAP all-point (%) | mAP VOC07 (%) | COCO AP (%) | gain over fine-tuning (pts) | gap to the teacher closed | object score vs the teacher's | same top class as the teacher | steps | wall time | gradient shares at step 0 |`,
    `|---|---|---|---|---|---|---|---|---|---|---|`,
    `| teacher NanoDet-g (no training) | ${pct(teacherMap)} | ${pct(teacherReport.map11)} | ${pct(teacherReport.coco.ap)} | | | 100% | 100% | | | |`,
    `| student before training | ${pct(before)} | ${pct(studentReport.map11)} | ${pct(studentReport.coco.ap)} | | | ${agreement(fidelityBefore)} | | | |`,
  ];
  for (const r of rows) {
    const gain = ft !== null && r.mapAll !== null && r.label !== 'finetune' ? (100 * (r.mapAll - ft)).toFixed(1) : '';
    const closed = before !== null && teacherMap !== null && r.mapAll !== null && teacherMap > before ? `${((100 * (r.mapAll - before)) / (teacherMap - before)).toFixed(0)}%` : '';
    const shares = r.shares.map((s) => `${s.part} ${(100 * s.share).toFixed(0)}%`).join(', ');
    const minutes = `${Math.floor(r.seconds / 60)} min ${Math.round(r.seconds % 60)} s`;
    lines.push(`| ${runs.find((x) => x.label === r.label)?.title ?? r.label} | ${pct(r.mapAll)} | ${pct(r.map11)} | ${pct(r.cocoAp)} | ${gain} | ${closed} | ${agreement(r.fidelity)} | ${r.steps} | ${minutes} | ${shares} |`);
  }
  const data = `trained on ${v['train-split'] === 'none' ? '' : `split "${v['train-split']}"`}${v['train-split'] !== 'none' && v.unlabeled ? ' + ' : ''}${v.unlabeled ? `the photos in ${v.unlabeled} (boxes: the teacher's detections)` : ''}`;
  const settings = `Student: ${studentTitle}; ${data}; evaluated on "${v['val-split']}", which no run trains on; input ${schedule.inputSize}x${schedule.inputSize}, ${schedule.steps ? `${schedule.steps} steps per run` : `${schedule.epochs} epochs`}, batch ${schedule.batchSize}, ${schedule.optimizer} lr ${schedule.lr} unless the row says otherwise (warm-up ${schedule.warmupSteps} steps, cosine), flip 0.5, seed ${schedule.seed}; methods at their paper defaults; wasm backend. "Gap closed": (after − before) / (teacher − before). "Object score vs the teacher's": at the locations of the evaluation images where the teacher scores an object above ${fidelityBefore.threshold}, the student's score for the teacher's class as a share of the teacher's; "same top class": how often both rank the same class first there (src/eval/fidelity.ts).`;
  const md = `${lines.join('\n')}\n\n${settings}\n`;
  writeFileSync(join(v.out!, 'results.md'), md);
  writeFileSync(join(v.out!, 'results.json'), `${JSON.stringify({ settings, teacher: { mapAll: teacherMap, map11: teacherReport.map11, cocoAp: teacherReport.coco.ap }, studentBefore: { mapAll: before, cocoAp: studentReport.coco.ap, fidelity: fidelityBefore }, rows }, null, 2)}\n`);
  return md;
}

main().catch((error) => {
  console.error(`experiment failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
