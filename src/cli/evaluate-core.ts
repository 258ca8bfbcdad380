/**
 * `npm run evaluate`: scores a model on a VOC split without training it. Arguments, the model
 * path (a manifest, or a model.json with its manifest beside it) and the printed table; the
 * detection and scoring are the distill command's (`evaluateModel` in run.ts, src/eval).
 */
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { DetectorEvalReport } from '../eval/evaluate-detector';
import { parseManifest } from '../models/manifest';
import { threadsOption, UsageError } from './args';
import type { FidelityReport } from '../eval/fidelity';
import { loadModel, resolveManifest } from './node-lab';
import { evaluateModel, fidelityOnSplit } from './run';
import { checkManifest, checkSplits } from './validate';
import { scoreSwaps, type SwapScores } from '../eval/head-swap';

export const EVALUATE_USAGE = `Usage: npm run evaluate -- --model <manifest or model.json> --data <dir> --split <name> [options]

Evaluates a detector on a PASCAL VOC split, headless, on the CPU (wasm): VOC mAP (11-point and
all-point, IoU 0.5), COCO AP@[.5:.95] and a per-class table. No training.

  --model <file>       a model manifest (a path or a name in models/), or a model.json
                       with its manifest beside it (manifest.json or <name>.manifest.json)  (required)
  --data <dir>         VOC folder (a VOCdevkit, a year folder, or above them)            (required)
  --split <name>       split to evaluate on, e.g. val or test                             (required)
  --input-size <n>     square input side, a multiple of 32           [the manifest's]
  --teacher <manifest> also measure how closely the model's class scores follow this teacher's
                       on the same images: where the teacher sees an object (top score > 0.3),
                       the scores of both, top-class agreement and the divergence, and elsewhere;
                       and where the model loses to it: the teacher's mAP, and the model's with
                       the teacher's class scores or the teacher's boxes in its head
  --json <file>        also write the report (without per-image boxes) as JSON
  --threads <n|all>    wasm kernel threads, 1 to 8                  [all: one per core]
  -h, --help           this help`;

export interface EvaluateCliOptions {
  /** The manifest to load. */
  manifestPath: string;
  dataDir: string;
  split: string;
  inputSize?: number;
  jsonPath?: string;
  /** A teacher manifest to measure the model's agreement with. */
  teacherPath?: string;
  /** wasm kernel threads. */
  threads: number;
  help: boolean;
}

function fail(message: string): never {
  throw new UsageError(message, EVALUATE_USAGE);
}

export function parseEvaluateCli(argv: string[]): EvaluateCliOptions {
  let v;
  try {
    v = parseArgs({
      args: argv,
      allowPositionals: false,
      options: {
        model: { type: 'string' },
        data: { type: 'string' },
        split: { type: 'string' },
        'input-size': { type: 'string' },
        json: { type: 'string' },
        teacher: { type: 'string' },
        threads: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }).values;
  } catch (error) {
    fail((error as Error).message);
  }
  if (v.help) return { manifestPath: '', dataDir: '', split: '', threads: 1, help: true };
  if (!v.model) fail('--model is required (a manifest, or a model.json with its manifest beside it).');
  if (!v.data) fail('--data is required (a folder with VOCdevkit/VOC20xx, or a year folder).');
  if (!v.split) fail('--split is required (e.g. val, or test for VOC2007).');
  const threads = threadsOption(v.threads, EVALUATE_USAGE);
  let inputSize: number | undefined;
  if (v['input-size'] !== undefined) {
    inputSize = Number(v['input-size']);
    if (!(Number.isInteger(inputSize) && inputSize >= 32 && inputSize % 32 === 0)) fail(`--input-size must be a multiple of 32, got "${v['input-size']}".`);
  }
  if (v.json !== undefined) {
    const dir = dirname(resolve(v.json));
    if (!existsSync(dir) || !statSync(dir).isDirectory()) fail(`--json ${v.json}: the folder ${dir} does not exist.`);
  }
  return { manifestPath: manifestFor(v.model), dataDir: v.data, split: v.split, inputSize, jsonPath: v.json, teacherPath: v.teacher === undefined ? undefined : manifestFor(v.teacher), threads, help: false };
}

/**
 * The manifest for --model: a manifest as given (or by name in models/), or, for a model.json
 * (a file with a modelTopology), the manifest beside it that names it.
 */
export function manifestFor(model: string): string {
  const path = resolveManifest(model);
  let json: { modelTopology?: unknown };
  try {
    json = JSON.parse(readFileSync(path, 'utf8')) as { modelTopology?: unknown };
  } catch (error) {
    fail(`--model ${model} cannot be read: ${(error as Error).message}`);
  }
  if (json.modelTopology === undefined) return path;
  const dir = dirname(path);
  const stem = basename(path).replace(/\.json$/, '');
  for (const candidate of [join(dir, 'manifest.json'), join(dir, `${stem}.manifest.json`)]) {
    if (!existsSync(candidate)) continue;
    try {
      const manifest = parseManifest(JSON.parse(readFileSync(candidate, 'utf8')), candidate);
      if (resolve(dir, manifest.model) === path) return candidate;
    } catch {
      // Not a manifest of this model: try the next one.
    }
  }
  return fail(`--model ${model} is a model.json, but no manifest beside it (manifest.json or ${stem}.manifest.json) names it: pass the manifest, which gives the classes, head outputs and strides.`);
}

const pct = (x: number | null | undefined) => (x === null || x === undefined ? '  n/a' : (100 * x).toFixed(1).padStart(5));

/** The per-class table (classes with ground truth) and the means, in percent. */
export function evaluationTable(report: DetectorEvalReport): string {
  const lines = ['class            AP all-point  AP 11-point  COCO AP   objects  detections'];
  for (const c of report.perClass.filter((k) => k.numGt > 0)) {
    lines.push(`${c.className.padEnd(16)} ${pct(c.apAll).padStart(12)}  ${pct(c.ap11).padStart(11)}  ${pct(c.cocoAp).padStart(7)}   ${String(c.numGt).padStart(7)}  ${String(c.numDetections).padStart(10)}`);
  }
  lines.push(`${'mAP'.padEnd(16)} ${pct(report.mapAll).padStart(12)}  ${pct(report.map11).padStart(11)}  ${pct(report.coco.ap).padStart(7)}   ${String(report.counts.groundTruth).padStart(7)}  ${String(report.counts.detections).padStart(10)}`);
  lines.push(`COCO AP50 ${pct(report.coco.ap50).trim()}, AP75 ${pct(report.coco.ap75).trim()}; ${report.classesInMap} classes in the mean; ${report.counts.images} images, ${report.counts.difficult} difficult objects ignored.`);
  return lines.join('\n');
}

/** One line: where the model loses to the teacher, from the swaps' scores (src/eval/head-swap.ts). */
export function headSwapLine(r: SwapScores): string {
  const p = (x: number | null) => (x === null ? 'n/a' : (100 * x).toFixed(1));
  const m = r.mapAll;
  const head = r.problems.head
    ? `; head halves not swapped: ${r.problems.head}`
    : `; with the teacher's class scores in its head ${p(m.teacherClasses)}, with the teacher's boxes ${p(m.teacherBoxes)}`;
  const neck = r.problems.neck ? ` (the teacher's neck cannot be fed to it: ${r.problems.neck})` : m.teacherNeck !== null ? `; its head on the teacher's neck outputs ${p(m.teacherNeck)}` : '';
  return `Where it loses to the teacher (mAP all-point, same images): the teacher ${p(m.teacher)}, this model ${p(m.student)}${head}${neck}.`;
}

/** Loads the model, scores it on the split and writes the JSON report when asked. */
export async function runEvaluation(
  o: EvaluateCliOptions,
  onProgress?: (done: number, total: number) => void,
): Promise<{ report: DetectorEvalReport; name: string; inputSize: number; fidelity?: FidelityReport; headSwap?: SwapScores }> {
  checkManifest(o.manifestPath, 'model');
  if (o.teacherPath) checkManifest(o.teacherPath, 'teacher');
  await checkSplits(o.dataDir, [o.split]);
  const model = loadModel(o.manifestPath, { trainable: false, name: 'evaluated' });
  const teacher = o.teacherPath ? loadModel(o.teacherPath, { trainable: false, name: 'evaluation_teacher' }) : undefined;
  try {
    const inputSize = o.inputSize ?? model.manifest.input.size;
    const report = await evaluateModel(model, o.dataDir, o.split, inputSize, undefined, onProgress);
    let fidelity: FidelityReport | undefined;
    let headSwap: SwapScores | undefined;
    if (teacher) {
      fidelity = await fidelityOnSplit(teacher, model, o.dataDir, o.split, inputSize);
      // The model's own score is the report above: one evaluation pass fewer.
      headSwap = await scoreSwaps(model, teacher, async (part, m, runner) =>
        part === 'student' ? report.mapAll : (await evaluateModel(m, o.dataDir, o.split, inputSize, undefined, undefined, runner)).mapAll,
      );
    }
    if (o.jsonPath) {
      const { images: _images, ...rest } = report;
      writeFileSync(o.jsonPath, `${JSON.stringify({ model: model.manifest.name, split: o.split, inputSize, ...rest, ...(fidelity ? { fidelity: { teacher: teacher!.manifest.name, ...fidelity } } : {}), ...(headSwap ? { headSwap } : {}) }, null, 2)}\n`);
    }
    return { report, name: model.manifest.name, inputSize, fidelity, headSwap };
  } finally {
    model.graph.dispose();
    teacher?.graph.dispose();
  }
}
