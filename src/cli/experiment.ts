/**
 * The reproducible experiment: the default student distilled from NanoDet-g on one VOC split and
 * evaluated on another, once with plain fine-tuning, once per method (each with the detection
 * loss), and once with every method together, all with the same schedule and seed. Writes a
 * results table (mAP, gain over plain fine-tuning, fraction of the teacher–student gap closed).
 *   npm run experiment -- --data ../shared/voc-fixture [--epochs 6] [--input-size 320]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { METHODS } from '../distill/registry';
import { defaultExperiment, type ExperimentConfig, type MethodConfig, type ScheduleConfig } from '../train/config';
import type { DetectorEvalReport } from '../eval/evaluate-detector';
import { loadModel } from './node-lab';
import { progressLine } from './progress';
import { evaluateModel, runExperiment, type RunResult } from './run';

const { values: v } = parseArgs({
  options: {
    data: { type: 'string' },
    'train-split': { type: 'string', default: 'train' },
    'val-split': { type: 'string', default: 'val' },
    epochs: { type: 'string', default: '6' },
    'batch-size': { type: 'string', default: '4' },
    'input-size': { type: 'string', default: '320' },
    lr: { type: 'string', default: '1e-4' },
    only: { type: 'string' },
    out: { type: 'string', default: 'experiments/fixture' },
  },
});

if (!v.data) {
  console.error('Usage: npm run experiment -- --data <VOC folder> [--epochs 6] [--batch-size 4] [--input-size 320] [--lr 1e-4] [--only finetune,kd,...] [--out experiments/fixture]');
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
}

const pct = (x: number | null | undefined) => (x === null || x === undefined ? 'n/a' : (100 * x).toFixed(1));

async function main() {
  await tf.setBackend('wasm');
  const base = defaultExperiment();
  const schedule = { ...base.schedule, epochs: Number(v.epochs), batchSize: Number(v['batch-size']), inputSize: Number(v['input-size']), lr: Number(v.lr) };
  const runs: { label: string; methods: MethodConfig[] }[] = [
    { label: 'finetune', methods: [] },
    ...METHODS.map((m) => ({ label: m.id, methods: [{ id: m.id }] })),
    { label: 'all', methods: METHODS.map((m) => ({ id: m.id })) },
  ].filter((r) => !v.only || v.only.split(',').includes(r.label));
  mkdirSync(v.out!, { recursive: true });

  const teacher = loadModel(base.teacher, { trainable: false, name: 'teacher-eval' });
  const teacherReport = await evaluateModel(teacher, v.data!, v['val-split']!, schedule.inputSize);
  teacher.graph.dispose();
  const student = loadModel(base.student, { trainable: false, name: 'student-eval' });
  const studentReport = await evaluateModel(student, v.data!, v['val-split']!, schedule.inputSize);
  student.graph.dispose();
  console.log(`teacher mAP ${pct(teacherReport.mapAll)}, student before training ${pct(studentReport.mapAll)} (all-point, ${v['val-split']}, ${schedule.inputSize}px)`);

  const rows: Row[] = [];
  for (const run of runs) {
    const config: ExperimentConfig = { ...base, methods: run.methods, schedule, checkpointEvery: 0, data: { ...base.data, trainSplit: v['train-split']!, valSplit: v['val-split']! } };
    const t0 = performance.now();
    const result = await runExperiment({
      config,
      dataDir: v.data!,
      evalBefore: false,
      onEvent: (e) => {
        if (e.type === 'step' && (e.step % 10 === 0 || e.step === e.totalSteps)) console.error(`${run.label.padEnd(10)} ${progressLine(e)}`);
      },
    });
    const row: Row = { label: run.label, methods: run.methods.map((m) => m.id as string), mapAll: result.after.mapAll, map11: result.after.map11, cocoAp: result.after.coco.ap, steps: result.steps, seconds: (performance.now() - t0) / 1000, trend: result.termTrend };
    rows.push(row);
    const trend = Object.entries(row.trend)
      .filter(([k]) => row.methods.includes(k) || k === 'loss')
      .map(([k, t]) => `${k} ${t.first.toPrecision(3)} → ${t.last.toPrecision(3)}`)
      .join('; ');
    console.log(`${run.label}: mAP ${pct(row.mapAll)} (${row.steps} steps, ${row.seconds.toFixed(0)} s); ${trend}`);
    // Written after every run, so a long experiment that is stopped still leaves its table.
    writeResults(rows, teacherReport, studentReport, schedule);
  }

  const md = writeResults(rows, teacherReport, studentReport, schedule);
  console.log(`\n${md}\nWrote ${v.out}/results.md and results.json`);
}


function writeResults(rows: Row[], teacherReport: DetectorEvalReport, studentReport: DetectorEvalReport, schedule: ScheduleConfig): string {
  const ft = rows.find((r) => r.label === 'finetune')?.mapAll ?? null;
  const teacherMap = teacherReport.mapAll;
  const lines = [
    `| run | mAP all-point (%) | mAP VOC07 (%) | COCO AP (%) | gain over fine-tuning (pts) | teacher–student gap closed | distillation terms, first → last tenth of steps |`,
    `|---|---|---|---|---|---|---|`,
    `| teacher NanoDet-g (no training) | ${pct(teacherMap)} | ${pct(teacherReport.map11)} | ${pct(teacherReport.coco.ap)} | | | |`,
    `| student before training | ${pct(studentReport.mapAll)} | ${pct(studentReport.map11)} | ${pct(studentReport.coco.ap)} | | | |`,
  ];
  for (const r of rows) {
    const gain = ft !== null && r.mapAll !== null && r.label !== 'finetune' ? (100 * (r.mapAll - ft)).toFixed(1) : '';
    const closed = ft !== null && teacherMap !== null && r.mapAll !== null && r.label !== 'finetune' && teacherMap > ft ? `${((100 * (r.mapAll - ft)) / (teacherMap - ft)).toFixed(0)}%` : '';
    const terms = Object.entries(r.trend)
      .filter(([k]) => r.label !== 'finetune' && r.methods.some((m) => k === m))
      .map(([k, t]) => `${k} ${t.first.toPrecision(3)} → ${t.last.toPrecision(3)}`)
      .join('; ');
    lines.push(`| ${r.label === 'finetune' ? 'plain fine-tuning (GFL loss only)' : r.label === 'all' ? 'all seven methods + GFL loss' : `${r.label} + GFL loss`} | ${pct(r.mapAll)} | ${pct(r.map11)} | ${pct(r.cocoAp)} | ${gain} | ${closed} | ${terms} |`);
  }
  const settings = `Train split "${v['train-split']}", evaluated on "${v['val-split']}"; input ${schedule.inputSize}x${schedule.inputSize}, ${schedule.epochs} epochs, batch ${schedule.batchSize}, ${schedule.optimizer} lr ${schedule.lr} (warm-up ${schedule.warmupSteps} steps, cosine), flip 0.5, seed ${schedule.seed}; methods at their paper defaults; wasm backend.`;
  const md = `${lines.join('\n')}\n\n${settings}\n`;
  writeFileSync(join(v.out!, 'results.md'), md);
  writeFileSync(join(v.out!, 'results.json'), `${JSON.stringify({ settings, teacher: { mapAll: teacherMap, map11: teacherReport.map11 }, studentBefore: { mapAll: studentReport.mapAll }, rows }, null, 2)}\n`);
  return md;
}

main().catch((error) => {
  console.error(`experiment failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
