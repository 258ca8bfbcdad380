/**
 * `npm run derive-student -- --calibration <photos> [--macs 0.6] [--teacher <manifest>] --out <dir>`:
 * derives a smaller student from the teacher on plain photos (no labels) and writes it as a tfjs
 * graph model with its manifest; optionally scores teacher and student on a VOC split.
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import '@tensorflow/tfjs-backend-wasm';
import { loadPhotos } from '../data/photos-node';
import { choiceRecord, deriveBest, photoSets } from '../derive/candidates';
import { DEFAULT_DERIVATION, deriveStudent, type DeriveOptions } from '../derive/derive';
import { artifactsToFiles } from '../graph/export';
import { graphFromArtifacts } from '../graph/load';
import { readManifest, readModelArtifacts } from '../models/load-node';
import { resolveManifest } from './node-lab';
import { evaluateModel } from './run';
import { parseThreads, startWasm } from './wasm-threads';
import { readPlanFile } from './plan-file';

const USAGE = `Usage: npm run derive-student -- --calibration <folder> --out <dir> [options]

Derives a smaller student detector from a teacher: keeps the 20 VOC classes, prunes convolution
channels to a MAC budget and refits every changed convolution by least squares against the
teacher on plain photos (no labels needed). Deterministic: the same photos give the same weights.

  --calibration <folder>  photos (.jpg/.png, searched in subfolders)            (required)
  --out <dir>             output folder (must be empty or new, or use --overwrite) (required)
  --teacher <manifest>    teacher manifest, a path or a name in models/  [nanodet.manifest.json]
  --macs <fraction>       student MACs / teacher MACs at the teacher's input size   [${DEFAULT_DERIVATION.macs}]
  --images <n>            calibration photos used (the first n in name order)      [${DEFAULT_DERIVATION.images}]
  --calibration-size <n>  input side for calibration                     [the teacher's input size]
  --replace-blocks <n>    replace the last n blocks of each stage (keeping one) by fitted 1x1 convs [${DEFAULT_DERIVATION.replaceBlocks}]
  --head-weight <x>       keep ratio of head channels relative to the rest          [${DEFAULT_DERIVATION.headWeight}]
  --rows <n>              sampled positions per photo and convolution              [${DEFAULT_DERIVATION.rowsPerImage}]
  --ridge <x>             ridge of the least-squares fits (relative)               [${DEFAULT_DERIVATION.ridge}]
  --object-rows <score>   the head's output convs also fit every position where the teacher
                          scores an object above this (0: a uniform sample only)   [${DEFAULT_DERIVATION.objectRows}]
  --object-repeat <n>     the weight of each such position in the fit              [${DEFAULT_DERIVATION.objectRepeat}]
  --ridge-toward zero|teacher  what the ridge pulls a refit filter towards: zero, or the
                          teacher's own filter at the kept channels                 [zero]
  --select energy|refit   channels kept by the energy each sends into its readers, or greedily
                          by how much the readers' refit loses without it         [${DEFAULT_DERIVATION.selection}]
  --plan <derivation.json>  keep the channels that derivation kept (its plan) instead of
                          choosing them on these photos, which then serve the refit alone
  --refit readers|downstream|none  refit the readers of pruned channels, or every conv after them [${DEFAULT_DERIVATION.refit}]
  --seed <n>              [1]
  --threads <n|all>       wasm kernel threads, 1 to 8 (the weights do not depend on it)  [all]
  --candidates <k>        derive k students, each from its own set of --images photos (the
                          first k·n in name order), and keep the one that scores best on
                          --choose-on's annotated split (its photos vary the score by up to
                          15 mAP; the choice holds on held-out images, README)        [1]
  --choose-on <voc dir>   annotated VOC images to choose among the candidates on (required with --candidates)
  --choose-split <name>   the split to choose on (never the one you report)           [train]
  --choose-size <n>       input side for the choice                       [the teacher's input size]
  --evaluate <voc dir>    afterwards, score teacher and student on a VOC split
  --split <name>          the split for --evaluate                                  [trainval]
  --overwrite             write into a non-empty --out
  -h, --help

Writes <out>/model.json, <out>/model.bin, <out>/manifest.json (parameters, MACs, how it was
derived) and <out>/derivation.json (per-layer fit errors, timings, evaluation).`;

function fail(message: string): never {
  console.error(`${message}\n\n${USAGE}`);
  process.exit(2);
}

function num(value: string | undefined, name: string, check: (n: number) => boolean, what: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || !check(n)) fail(`--${name} must be ${what}, got "${value}".`);
  return n;
}

async function main() {
  let values;
  try {
    ({ values } = parseArgs({
      args: process.argv.slice(2),
      options: {
        calibration: { type: 'string' },
        out: { type: 'string' },
        teacher: { type: 'string', default: 'nanodet.manifest.json' },
        macs: { type: 'string' },
        images: { type: 'string' },
        'calibration-size': { type: 'string' },
        'head-weight': { type: 'string' },
        'replace-blocks': { type: 'string' },
        rows: { type: 'string' },
        ridge: { type: 'string' },
        'object-rows': { type: 'string' },
        'object-repeat': { type: 'string' },
        'ridge-toward': { type: 'string' },
        refit: { type: 'string' },
        select: { type: 'string' },
        plan: { type: 'string' },
        seed: { type: 'string' },
        threads: { type: 'string' },
        candidates: { type: 'string' },
        'choose-on': { type: 'string' },
        'choose-split': { type: 'string', default: 'train' },
        'choose-size': { type: 'string' },
        evaluate: { type: 'string' },
        split: { type: 'string', default: 'trainval' },
        overwrite: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (error) {
    fail((error as Error).message);
  }
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (!values.calibration) fail('--calibration is required: a folder of photos to calibrate on.');
  if (!values.out) fail('--out is required.');
  const refit = values.refit ?? DEFAULT_DERIVATION.refit;
  if (!['downstream', 'readers', 'none'].includes(refit)) fail(`--refit must be downstream, readers or none, got "${refit}".`);
  const options: DeriveOptions = {
    ...DEFAULT_DERIVATION,
    macs: num(values.macs, 'macs', (n) => n > 0 && n <= 1, 'a fraction in (0, 1]') ?? DEFAULT_DERIVATION.macs,
    calibrationSize: num(values['calibration-size'], 'calibration-size', (n) => Number.isInteger(n) && n >= 32 && n % 32 === 0, 'a multiple of 32') ?? undefined,
    replaceBlocks: num(values['replace-blocks'], 'replace-blocks', (n) => Number.isInteger(n) && n >= 0, 'an integer >= 0') ?? DEFAULT_DERIVATION.replaceBlocks,
    headWeight: num(values['head-weight'], 'head-weight', (n) => n > 0, 'positive') ?? DEFAULT_DERIVATION.headWeight,
    rowsPerImage: num(values.rows, 'rows', (n) => Number.isInteger(n) && n > 0, 'a positive integer') ?? DEFAULT_DERIVATION.rowsPerImage,
    ridge: num(values.ridge, 'ridge', (n) => n > 0, 'positive') ?? DEFAULT_DERIVATION.ridge,
    seed: num(values.seed, 'seed', Number.isInteger, 'an integer') ?? 1,
    objectRepeat: num(values['object-repeat'], 'object-repeat', (n) => Number.isInteger(n) && n > 0, 'a positive integer') ?? DEFAULT_DERIVATION.objectRepeat,
    ridgeToward: values['ridge-toward'] === undefined || values['ridge-toward'] === 'zero' || values['ridge-toward'] === 'teacher' ? (values['ridge-toward'] as 'zero' | 'teacher' | undefined) : fail(`--ridge-toward is zero or teacher, not "${values['ridge-toward']}".`),
    objectRows: num(values['object-rows'], 'object-rows', (n) => n >= 0 && n < 1, 'a score in [0, 1)') ?? DEFAULT_DERIVATION.objectRows,
    refit: refit as DeriveOptions['refit'],
    selection: values.select === undefined || values.select === 'energy' || values.select === 'refit' ? (values.select ?? DEFAULT_DERIVATION.selection) : fail(`--select is energy or refit, not "${values.select}".`),
  };
  if (values.plan) {
    if (values.candidates && values.candidates !== '1') fail('--plan fixes the channels, so candidates would differ only in their refit photos: use one or the other.');
    try {
      options.keep = readPlanFile(resolve(values.plan));
    } catch (error) {
      fail((error as Error).message);
    }
  }
  const maxImages = num(values.images, 'images', (n) => Number.isInteger(n) && n > 0, 'a positive integer') ?? DEFAULT_DERIVATION.images;
  const out = resolve(values.out);
  if (existsSync(out) && readdirSync(out).length > 0 && !values.overwrite) fail(`${out} is not empty; choose a new folder or add --overwrite.`);
  let teacher;
  try {
    teacher = readManifest(resolveManifest(values.teacher));
  } catch (error) {
    fail(`Cannot read the teacher: ${(error as Error).message}`);
  }
  const candidates = num(values.candidates, 'candidates', (n) => Number.isInteger(n) && n >= 1, 'a positive integer') ?? 1;
  if (candidates > 1 && !values['choose-on']) fail('--candidates needs --choose-on: annotated VOC images to choose the best candidate on.');
  const chooseSize = num(values['choose-size'], 'choose-size', (n) => Number.isInteger(n) && n >= 32 && n % 32 === 0, 'a multiple of 32') ?? teacher.manifest.input.size;
  let photos;
  let sets: [number, number][] = [];
  try {
    photos = loadPhotos(resolve(values.calibration), maxImages * candidates);
    sets = candidates > 1 ? photoSets(photos.images.length, maxImages, candidates) : [[0, photos.images.length]];
  } catch (error) {
    fail((error as Error).message);
  }
  for (const s of photos.skipped) console.warn(`skipped ${s.file}: ${s.reason}`);

  let threads = 1;
  try {
    threads = parseThreads(values.threads);
  } catch (error) {
    fail((error as Error).message);
  }
  await startWasm(threads);
  const chooseOn = values['choose-on'];
  const { kept: derived, chosen, scores } = await deriveBest(
    sets,
    async ([from, to], i) => {
      const set = candidates > 1 ? ` (candidate ${i + 1} of ${candidates}: photos ${from + 1}–${to})` : '';
      console.log(`Deriving from ${teacher.manifest.name} at ${(100 * options.macs).toFixed(0)}% of its MACs, calibrating on ${to - from} photos from ${values.calibration}${set} ...`);
      let last = '';
      const candidate = await deriveStudent(readModelArtifacts(teacher.modelPath), teacher.manifest, photos.images.slice(from, to), {
        ...options,
        calibrationInfo: candidates > 1 ? { source: `${values.calibration}, photos ${from + 1}–${to} in name order` } : { sha256: photos.hash, source: values.calibration },
        onProgress: (stage, done, total) => {
          const line = `  ${stage} ${done}/${total}`;
          if (line !== last && process.stdout.isTTY) process.stdout.write(`\r${line}   `);
          last = line;
        },
      }).catch((error: Error) => fail(`Could not derive the student: ${error.message}`));
      if (process.stdout.isTTY) process.stdout.write('\n');
      return candidate;
    },
    async (candidate, i) => {
      const graph = graphFromArtifacts(candidate.artifacts, { trainable: false, name: `candidate-${i + 1}` });
      const rep = await evaluateModel({ manifest: candidate.manifest, graph }, resolve(chooseOn!), values['choose-split'], chooseSize)
        .catch((error: Error) => fail(`Could not score candidate ${i + 1}: ${error.message}`))
        .finally(() => graph.dispose());
      console.log(`  candidate ${i + 1}: mAP ${(100 * (rep.mapAll ?? 0)).toFixed(1)}, COCO AP ${(100 * (rep.coco.ap ?? 0)).toFixed(1)} on ${values['choose-split']} at ${chooseSize}, derived in ${candidate.report.seconds.toFixed(0)} s`);
      return { mapAll: rep.mapAll ?? 0, cocoAp: rep.coco.ap ?? 0 };
    },
  );
  if (candidates > 1 && values.evaluate && resolve(values.evaluate) === resolve(chooseOn!) && (values.split === values['choose-split'] || values.split === 'trainval')) {
    console.warn(`note: --split ${values.split} holds the images the candidates were chosen on (${values['choose-split']}); a fair score needs images the choice did not see (e.g. --split val).`);
  }
  if (candidates > 1) {
    derived.manifest.derivedFrom = { ...derived.manifest.derivedFrom!, choice: choiceRecord({ data: chooseOn!, split: values['choose-split'], inputSize: chooseSize }, sets, scores, chosen) };
    console.log(`kept candidate ${chosen + 1} (photos ${sets[chosen]![0] + 1}–${sets[chosen]![1]}), the best on ${values['choose-split']}`);
  }
  const r = derived.report;
  const pct = (a: number, b: number) => `${((100 * a) / b).toFixed(1)}%`;
  console.log(
    `student: ${r.student.parameters.toLocaleString('en')} parameters (${pct(r.student.parameters, r.teacher.parameters)} of the teacher's), ` +
      `${(r.student.macs / 1e9).toFixed(3)} GMAC at ${teacher.manifest.input.size} (${pct(r.student.macs, r.teacher.macs)}), derived in ${r.seconds.toFixed(0)} s`,
  );

  mkdirSync(out, { recursive: true });
  const { modelJson, weights } = artifactsToFiles(derived.artifacts, 'model.bin');
  writeFileSync(join(out, 'model.bin'), weights);
  writeFileSync(join(out, 'model.json'), modelJson);
  writeFileSync(join(out, 'manifest.json'), `${JSON.stringify({ ...derived.manifest, model: 'model.json' }, null, 2)}\n`);
  const evaluation: Record<string, unknown> = {};
  if (values.evaluate) {
    const student = { manifest: derived.manifest, graph: graphFromArtifacts(derived.artifacts, { trainable: false, name: 'student' }) };
    const t = { manifest: teacher.manifest, graph: graphFromArtifacts(readModelArtifacts(teacher.modelPath), { trainable: false, name: 'teacher' }) };
    const size = teacher.manifest.input.size;
    for (const [name, model] of [['teacher', t], ['student', student]] as const) {
      const rep = await evaluateModel(model, resolve(values.evaluate), values.split, size);
      evaluation[name] = { mapAll: rep.mapAll, map11: rep.map11, cocoAp: rep.coco.ap };
      console.log(`${name.padEnd(8)} mAP ${(100 * (rep.mapAll ?? 0)).toFixed(1)} (all-point), ${(100 * (rep.map11 ?? 0)).toFixed(1)} (VOC07) on ${values.split} at ${size}`);
    }
  }
  writeFileSync(join(out, 'derivation.json'), `${JSON.stringify({ options: { ...options, images: maxImages, candidates }, calibration: { files: photos.files.length, sha256: photos.hash }, report: r, evaluation, ...(candidates > 1 ? { choice: derived.manifest.derivedFrom?.choice } : {}) }, null, 2)}\n`);
  console.log(`wrote ${out}/{model.json,model.bin,manifest.json,derivation.json}`);
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : String(error));
  process.exit(1);
});
