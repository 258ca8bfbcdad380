/**
 * The reproducible experiment: one student distilled from NanoDet-g and evaluated on images the
 * runs never train on, once with plain fine-tuning, once per method (each with the detection
 * loss), once with every method together and once with the repair recipe (the lab's default
 * experiment), all with the same schedule, steps and seed. Writes a results table: mAP, gain over
 * plain fine-tuning, the fraction of the teacher–student gap closed, steps, wall time, and each
 * loss part's share of the gradient at the first step.
 *   npm run experiment -- --data ../shared/voc-fixture [--student runs/s/manifest.json]
 *     [--unlabeled ../shared/voc-unlabeled --train-split none --val-split trainval] [--epochs 6]
 * With `--folds k` every row is cross-validated over the evaluation split (default trainval):
 * trained k times, each time on the images outside one fold (src/data/voc/folds.ts), and scored
 * on all images at once, each image by the run that did not train on it. `--fold i` runs one
 * fold only (folds can run in parallel processes); each fold's rows are kept in <out>/fold-i-of-k
 * and reused by a later call with the same settings, which pools them once all folds are there.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import '@tensorflow/tfjs-backend-wasm';
import { METHODS } from '../distill/registry';
import { defaultExperiment, repairRecipe, type ExperimentConfig, type MethodConfig, type ScheduleConfig } from '../train/config';
import { gradientShares } from '../train/gradient-shares';
import { foldSplitName } from '../data/voc/folds';
import { poolReports, reportOnImages, type DetectorEvalReport } from '../eval/evaluate-detector';
import { poolFidelity, type FidelityReport } from '../eval/fidelity';
import { loadModel } from './node-lab';
import { progressLine } from './progress';
import { evaluateModel, fidelityOnSplit, runExperiment, type RunResult } from './run';
import { parseThreads, startWasm } from './wasm-threads';

const USAGE =
  'Usage: npm run experiment -- --data <VOC folder> [--student <manifest>] [--unlabeled <photo folder>] [--max-unlabeled n] [--train-split train|none] [--val-split val] [--epochs 6 | --steps n] [--batch-size 4] [--input-size 320] [--lr 1e-4] [--ema 0.99] [--crop-scale 0.6] [--only finetune,kd,...,all,recipe] [--folds k [--fold i]] [--threads n|all (wasm kernel threads; 1 when folds run side by side)] [--out experiments/fixture]';

const { values: v } = parseArgs({
  options: {
    data: { type: 'string' },
    student: { type: 'string' },
    unlabeled: { type: 'string' },
    'max-unlabeled': { type: 'string' },
    'train-split': { type: 'string', default: 'train' },
    'val-split': { type: 'string' },
    folds: { type: 'string' },
    fold: { type: 'string' },
    epochs: { type: 'string', default: '6' },
    steps: { type: 'string' },
    'batch-size': { type: 'string', default: '4' },
    'input-size': { type: 'string', default: '320' },
    lr: { type: 'string', default: '1e-4' },
    ema: { type: 'string' },
    'crop-scale': { type: 'string' },
    'annotated-per-batch': { type: 'string' },
    only: { type: 'string' },
    threads: { type: 'string' },
    out: { type: 'string', default: 'experiments/fixture' },
  },
});

if (!v.data) {
  console.error(USAGE);
  process.exit(2);
}
const folds = v.folds === undefined ? 0 : Number(v.folds);
const onlyFold = v.fold === undefined ? undefined : Number(v.fold);
const usageError = (message: string) => {
  console.error(`${message}\n${USAGE}`);
  process.exit(2);
};
if (v.folds !== undefined && !(Number.isInteger(folds) && folds >= 2)) usageError(`--folds must be an integer of at least 2, got "${v.folds}".`);
if (onlyFold !== undefined && !(folds && Number.isInteger(onlyFold) && onlyFold >= 1 && onlyFold <= folds)) usageError(`--fold needs --folds k and a number from 1 to k, got "${v.fold}".`);
if (folds && v['train-split'] !== 'train') usageError('--folds trains each run on the images outside one fold of --val-split: leave out --train-split.');
let threads = 1;
try {
  threads = parseThreads(v.threads);
} catch (error) {
  usageError((error as Error).message);
}
/** The split scored on: with folds, the split the folds are taken from. */
const valSplit = v['val-split'] ?? (folds ? 'trainval' : 'val');

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
  /** Cross-validated: each fold's own mAP (all-point), in fold order. */
  perFold?: (number | null)[];
}

/** A row of one fold, with its detections (kept to be scored with the other folds'). */
interface FoldRow extends Row {
  report: DetectorEvalReport;
  /** The run's definition (methods, weights, rate): a row is reused only for the same run. */
  run: string;
}

interface FoldFile {
  /** Everything a row's result depends on: rows are reused only when it is unchanged. */
  settings: string;
  rows: FoldRow[];
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
  await startWasm(threads);
  const base = defaultExperiment();
  const recipe = repairRecipe();
  const studentName = v.student ?? base.student;
  const schedule = { ...base.schedule, steps: v.steps ? Number(v.steps) : undefined, epochs: Number(v.epochs), batchSize: Number(v['batch-size']), inputSize: Number(v['input-size']), lr: Number(v.lr), ...(v.ema ? { ema: Number(v.ema) } : {}), ...(v['crop-scale'] ? { cropScale: Number(v['crop-scale']) } : {}) };
  const runs: Run[] = [
    { label: 'finetune', title: 'plain fine-tuning (GFL loss only)', methods: [], detectionWeight: 1 },
    ...METHODS.map((m) => ({ label: m.id, title: `${m.id} + GFL loss`, methods: [{ id: m.id }], detectionWeight: 1 })),
    { label: 'all', title: `all ${METHODS.length} methods + GFL loss`, methods: METHODS.map((m) => ({ id: m.id })), detectionWeight: 1 },
    { label: 'recipe', title: `repair recipe: ${recipe.methods.map((m) => (m.scale && m.scale !== 1 ? `${m.id} ×${m.scale}` : m.id)).join(' + ')}${recipe.detectionWeight ? ' + GFL loss' : ''}, lr ${recipe.schedule.lr}, weight average ${recipe.schedule.ema}, ${recipe.data.annotatedPerBatch} annotated images per batch`, methods: recipe.methods, detectionWeight: recipe.detectionWeight, lr: recipe.schedule.lr, ema: recipe.schedule.ema, annotatedPerBatch: recipe.data.annotatedPerBatch },
  ].filter((r) => !v.only || v.only.split(',').includes(r.label));
  mkdirSync(v.out!, { recursive: true });

  // Teacher and student before training, on every image scored (no run trains them: no folds needed).
  const teacher = loadModel(base.teacher, { trainable: false, name: 'teacher-eval' });
  const teacherReport = await evaluateModel(teacher, v.data!, valSplit, schedule.inputSize);
  const student = loadModel(studentName, { trainable: false, name: 'student-eval' });
  const studentReport = await evaluateModel(student, v.data!, valSplit, schedule.inputSize);
  const studentTitle = student.manifest.name;
  const fidelityBefore = await fidelityOnSplit(teacher, student, v.data!, valSplit, schedule.inputSize);
  teacher.graph.dispose();
  student.graph.dispose();
  console.log(`teacher mAP ${pct(teacherReport.mapAll)}, student before training ${pct(studentReport.mapAll)} (all-point, ${valSplit}, ${schedule.inputSize}px)`);
  const write = (rows: Row[]) => writeResults(rows, runs, teacherReport, studentReport, fidelityBefore, schedule, studentTitle);

  /** Trains and scores one row on a train/evaluation pair of splits. */
  const runRow = async (run: Run, trainSplit: string, evalSplit: string, tag: string): Promise<FoldRow> => {
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
        trainSplit,
        valSplit: evalSplit,
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
        if (e.step % 10 === 0 || e.step === e.totalSteps) console.error(`${`${run.label}${tag}`.padEnd(12)} ${progressLine(e)}`);
      },
    });
    const row: FoldRow = { label: run.label, methods: run.methods.map((m) => m.id as string), mapAll: result.after.mapAll, map11: result.after.map11, cocoAp: result.after.coco.ap, steps: result.steps, seconds: (performance.now() - t0) / 1000, trend: result.termTrend, shares, fidelity: result.fidelity?.after, report: result.after, run: JSON.stringify(run) };
    console.log(`${run.label}${tag}: mAP ${pct(row.mapAll)} (${row.steps} steps, ${row.seconds.toFixed(0)} s)`);
    return row;
  };

  if (!folds) {
    const rows: Row[] = [];
    for (const run of runs) {
      const { report: _, run: __, ...row } = await runRow(run, v['train-split']!, valSplit, '');
      rows.push(row);
      // Written after every run, so a long experiment that is stopped still leaves its table.
      write(rows);
    }
    console.log(`\n${write(rows)}\nWrote ${v.out}/results.md and results.json`);
    return;
  }

  // Cross-validation: each fold's rows in a file of its own, reused while the settings are the same.
  const settings = JSON.stringify({ student: studentName, data: v.data, unlabeled: v.unlabeled ?? null, maxUnlabeled: v['max-unlabeled'] ?? null, annotatedPerBatch: v['annotated-per-batch'] ?? null, valSplit, folds, schedule });
  const foldFile = (i: number) => join(v.out!, `fold-${i}-of-${folds}`, 'rows.json');
  const readFold = (i: number): FoldFile => {
    const path = foldFile(i);
    if (!existsSync(path)) return { settings, rows: [] };
    const file = JSON.parse(readFileSync(path, 'utf8')) as FoldFile;
    const changed = file.rows.filter((r) => { const run = runs.find((x) => x.label === r.label); return run && r.run !== JSON.stringify(run); }).map((r) => r.label);
    if (file.settings !== settings || changed.length) {
      throw new Error(`${path} holds rows made with other settings (${changed.length ? `the runs ${changed.join(', ')}` : 'student, data, schedule or folds'}): choose another --out, or remove that folder to run it again.`);
    }
    return file;
  };
  for (let i = 1; i <= folds; i++) readFold(i); // a stale fold is refused before any run
  for (const i of onlyFold ? [onlyFold] : Array.from({ length: folds }, (_, k) => k + 1)) {
    const file = readFold(i);
    for (const run of runs) {
      if (file.rows.some((r) => r.label === run.label)) continue;
      file.rows.push(await runRow(run, foldSplitName(valSplit, i, folds, false), foldSplitName(valSplit, i, folds, true), ` ${i}/${folds}`));
      mkdirSync(join(v.out!, `fold-${i}-of-${folds}`), { recursive: true });
      writeFileSync(foldFile(i), `${JSON.stringify(file)}\n`);
    }
  }
  const perFold = Array.from({ length: folds }, (_, k) => readFold(k + 1));
  const missing = perFold.flatMap((f, k) => runs.filter((run) => !f.rows.some((r) => r.label === run.label)).map((run) => `${run.label} in fold ${k + 1}`));
  if (missing.length) {
    console.log(`\nFold ${onlyFold} of ${folds} done. Still to run: ${missing.join(', ')}. The same command without --fold runs them and scores all folds together.`);
    return;
  }
  const rows = runs.map((run): Row => pooledRow(perFold.map((f) => f.rows.find((r) => r.label === run.label)!)));
  // Each fold's images, as its rows were scored on them: the teacher and the untrained student read there too.
  const foldIds = perFold.map((f) => f.rows[0]!.report.images.map((i) => i.id));
  const baselines: FoldBaselines = {
    teacher: foldIds.map((ids) => reportOnImages(teacherReport, ids).mapAll),
    before: foldIds.map((ids) => reportOnImages(studentReport, ids).mapAll),
  };
  const md = writeResults(rows, runs, teacherReport, studentReport, fidelityBefore, schedule, studentTitle, baselines);
  console.log(`\n${md}\nWrote ${v.out}/results.md and results.json`);
}

/** One row from the same run on every fold: its detections scored together, times summed, shares and trends averaged. */
function pooledRow(rows: FoldRow[]): Row {
  const report = poolReports(rows.map((r) => r.report));
  const mean = (f: (r: FoldRow) => number) => rows.reduce((n, r) => n + f(r), 0) / rows.length;
  const first = rows[0]!;
  const fidelities = rows.map((r) => r.fidelity).filter((f): f is FidelityReport => !!f);
  return {
    label: first.label,
    methods: first.methods,
    mapAll: report.mapAll,
    map11: report.map11,
    cocoAp: report.coco.ap,
    steps: first.steps,
    seconds: rows.reduce((n, r) => n + r.seconds, 0),
    trend: Object.fromEntries(Object.keys(first.trend).map((k) => [k, { first: mean((r) => r.trend[k]?.first ?? 0), last: mean((r) => r.trend[k]?.last ?? 0) }])),
    shares: first.shares.map((s) => ({ part: s.part, share: mean((r) => r.shares.find((x) => x.part === s.part)?.share ?? 0) })),
    ...(fidelities.length === rows.length ? { fidelity: poolFidelity(fidelities) } : {}),
    perFold: rows.map((r) => r.mapAll),
  };
}

/** The student's score at the teacher's object locations, as a share of the teacher's, and their top-class agreement. */
function agreement(f: FidelityReport | undefined): string {
  if (!f || f.teacherScore === null || f.studentScore === null || f.sameTopClass === null) return ' | ';
  return `${((100 * f.studentScore) / f.teacherScore).toFixed(0)}% | ${(100 * f.sameTopClass).toFixed(1)}%`;
}

/** The teacher's and the untrained student's mAP on each fold's images (cross-validation). */
interface FoldBaselines {
  teacher: (number | null)[];
  before: (number | null)[];
}

const mean = (xs: readonly (number | null)[]): number | null => (xs.every((x): x is number => x !== null) && xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
const closedGap = (after: number | null, before: number | null, teacher: number | null) =>
  after !== null && before !== null && teacher !== null && teacher > before ? `${((100 * (after - before)) / (teacher - before)).toFixed(0)}%` : '';

function writeResults(rows: Row[], runs: Run[], teacherReport: DetectorEvalReport, studentReport: DetectorEvalReport, fidelityBefore: FidelityReport, schedule: ScheduleConfig, studentTitle: string, baselines?: FoldBaselines): string {
  const ft = rows.find((r) => r.label === 'finetune')?.mapAll ?? null;
  const teacherMap = teacherReport.mapAll;
  const before = studentReport.mapAll;
  // Cross-validated: each fold's mAP and their mean beside the pooled one (a fold's own mAP leaves
  // out the classes it has no object of, so it reads higher than the pooled score of the same model).
  const folded = (perFold: (number | null)[] | undefined) => (perFold ? ` (folds: ${perFold.map(pct).join(' · ')}; mean ${pct(mean(perFold))})` : '');
  const foldGap = (perFold: (number | null)[] | undefined) => (perFold && baselines ? `; fold mean ${closedGap(mean(perFold), mean(baselines.before), mean(baselines.teacher))}` : '');
  const lines = [
    `| run | mAP all-point (%) | mAP VOC07 (%) | COCO AP (%) | gain over fine-tuning (pts) | gap to the teacher closed | object score vs the teacher's | same top class as the teacher | steps | wall time | gradient shares at step 0 |`,
    `|---|---|---|---|---|---|---|---|---|---|---|`,
    `| teacher NanoDet-g (no training) | ${pct(teacherMap)}${folded(baselines?.teacher)} | ${pct(teacherReport.map11)} | ${pct(teacherReport.coco.ap)} | | | 100% | 100% | | | |`,
    `| student before training | ${pct(before)}${folded(baselines?.before)} | ${pct(studentReport.map11)} | ${pct(studentReport.coco.ap)} | | | ${agreement(fidelityBefore)} | | | |`,
  ];
  for (const r of rows) {
    const gain = ft !== null && r.mapAll !== null && r.label !== 'finetune' ? (100 * (r.mapAll - ft)).toFixed(1) : '';
    const closed = `${closedGap(r.mapAll, before, teacherMap)}${foldGap(r.perFold)}`;
    const shares = r.shares.map((s) => `${s.part} ${(100 * s.share).toFixed(0)}%`).join(', ');
    const minutes = `${Math.floor(r.seconds / 60)} min ${Math.round(r.seconds % 60)} s`;
    lines.push(`| ${runs.find((x) => x.label === r.label)?.title ?? r.label} | ${pct(r.mapAll)}${folded(r.perFold)} | ${pct(r.map11)} | ${pct(r.cocoAp)} | ${gain} | ${closed} | ${agreement(r.fidelity)} | ${r.steps} | ${minutes} | ${shares} |`);
  }
  const annotated = folds ? `the images of "${valSplit}" outside the fold scored` : `split "${v['train-split']}"`;
  const data = `trained on ${v['train-split'] === 'none' ? '' : annotated}${v['train-split'] !== 'none' && v.unlabeled ? ' + ' : ''}${v.unlabeled ? `the photos in ${v.unlabeled} (boxes: the teacher's detections)` : ''}`;
  const settings = `Student: ${studentTitle}; ${data}; ${folds ? `cross-validated over "${valSplit}" in ${folds} folds: every row trained ${folds} times, once per fold on the images outside it, and scored on all ${teacherReport.counts.images} images at once, each image by the run that did not train on it (in brackets each fold's own mAP, on its 1/${folds} of the images, and their mean; "gap closed" is given for the pooled score and for the fold means); wall time is the folds' sum` : `evaluated on "${valSplit}", which no run trains on`}; input ${schedule.inputSize}x${schedule.inputSize}, ${schedule.steps ? `${schedule.steps} steps per run` : `${schedule.epochs} epochs`}, batch ${schedule.batchSize}, ${schedule.optimizer} lr ${schedule.lr} unless the row says otherwise (warm-up ${schedule.warmupSteps} steps, cosine), flip 0.5${schedule.cropScale !== undefined && schedule.cropScale < 1 ? `, random crops of sides ${schedule.cropScale}–1` : ''}, seed ${schedule.seed}; methods at their paper defaults; wasm backend. "Gap closed": (after − before) / (teacher − before). "Object score vs the teacher's": at the locations of the evaluation images where the teacher scores an object above ${fidelityBefore.threshold}, the student's score for the teacher's class as a share of the teacher's; "same top class": how often both rank the same class first there (src/eval/fidelity.ts).`;
  const md = `${lines.join('\n')}\n\n${settings}\n`;
  writeFileSync(join(v.out!, 'results.md'), md);
  writeFileSync(join(v.out!, 'results.json'), `${JSON.stringify({ settings, teacher: { mapAll: teacherMap, map11: teacherReport.map11, cocoAp: teacherReport.coco.ap }, studentBefore: { mapAll: before, cocoAp: studentReport.coco.ap, fidelity: fidelityBefore }, ...(baselines ? { foldBaselines: baselines } : {}), rows }, null, 2)}\n`);
  return md;
}

main().catch((error) => {
  console.error(`experiment failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
