/**
 * One headless experiment, as the command line runs it: load the teacher and the student, the
 * train and validation splits, evaluate the student (and optionally the teacher), distill with the
 * configured methods, evaluate again, and write the distilled student (tfjs graph model +
 * manifest), a log of every loss term per step, the evaluation and checkpoints to a folder.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { mapVocClasses, VOC_CLASSES } from '../data/voc/classes';
import { createGflDetector, EVAL_DETECT_OPTIONS, evaluateDetector, type DetectorEvalReport } from '../eval/evaluate-detector';
import { artifactsToFiles, exportGraph } from '../graph/export';
import { profileGraph } from '../graph/profile';
import type { ModelManifest } from '../models/manifest';
import { packCheckpoint, restoreCheckpoint, type Checkpoint } from '../train/checkpoint';
import { photosTeach, type ExperimentConfig } from '../train/config';
import { Optimizer } from '../train/optimizer';
import { createSession, type ModelHandle } from '../train/session';
import { train, type TrainEvent } from '../train/trainer';
import { loadModel, loadSplit } from './node-lab';
import { checkManifest, checkOutDir, checkSplits } from './validate';
import { listPhotoFiles } from '../data/photos-node';
import { decodeImageFile } from '../data/decode-node';
import { iterateBatches, type AnnotatedImage, type ImageLoader } from '../data/pipeline';
import { measureFidelity, type FidelityReport } from '../eval/fidelity';
import { combinedLoader, photoImages, photoPath } from '../data/photos';
import { DEFAULT_PSEUDO_THRESHOLD } from '../train/pseudo-labels';
import { METHODS } from '../distill/registry';
import { readManifest, readModelArtifacts } from '../models/load-node';
import { buildModelCard, MODEL_CARD_FILE, MODEL_CARD_MARKDOWN, MODEL_CARD_METADATA_KEY, modelCardMarkdown, type DataInput } from '../provenance/model-card';
import { logRow, type LogRow } from '../provenance/run-log';
import { newRunRecord, parseRunRecord, RUN_FILE, runEvaluation, withEvaluation, type RunRecord } from '../provenance/run-record';
import { runJson } from '../provenance/run-file';
import { sha256Hex } from '../provenance/sha256';
import { PROJECT_VERSION } from '../provenance/version';
import { resolveManifest } from './node-lab';
import type { GraphRunner } from '../detect/runner';
import { ChannelFade, fadeScale, pruneToPlan, tappedNodes } from '../derive/fade';
import { graphFromArtifacts } from '../graph/load';

/** sha256 of a model's weights as stored (a manifest path, or a bare name in models/). */
export function modelWeightsSha256(nameOrPath: string): string | null {
  const { modelPath } = readManifest(resolveManifest(nameOrPath));
  const data = readModelArtifacts(modelPath).weightData;
  if (!data) return null;
  const parts = Array.isArray(data) ? data : [data];
  const hash = parts.map((b) => new Uint8Array(b));
  const all = new Uint8Array(hash.reduce((n, b) => n + b.byteLength, 0));
  let o = 0;
  for (const b of hash) {
    all.set(b, o);
    o += b.byteLength;
  }
  return sha256Hex(all);
}

/** `--train-split none`: train on unlabelled photos only. */
export const NO_SPLIT = 'none';
/** Photos without annotations as training images (their boxes come from the teacher), and their loader. */
export function unlabeledImages(dir: string, max?: number): { images: AnnotatedImage[]; load: ImageLoader } {
  const files = listPhotoFiles(dir);
  if (files.length === 0) throw new Error(`No photos (.jpg, .jpeg, .png) in ${dir}.`);
  return { images: photoImages(files, max), load: async (id) => decodeImageFile(join(dir, photoPath(id))) };
}

export interface RunOptions {
  config: ExperimentConfig;
  /** A folder holding a VOCdevkit (or a year folder). */
  dataDir: string;
  /** Where outputs go; nothing is written when absent. */
  outDir?: string;
  resume?: Checkpoint;
  /** Write into an `outDir` that already holds files (otherwise refused unless resuming). */
  overwrite?: boolean;
  evalBefore?: boolean;
  evalTeacher?: boolean;
  /** Load the teacher even when nothing else needs it, to measure the student's agreement with it. */
  fidelity?: boolean;
  /** Evaluate the student every this many steps while training, into run.json (0 or absent: never). */
  evalEvery?: number;
  weightPrecision?: 'float32' | 'float16';
  /** The backend the run trains on, as recorded in run.json and the model card (the caller selects it). */
  backend?: 'wasm' | 'webgpu';
  /** Memory for the teacher's taps of images seen before, in MiB (default DEFAULT_TEACHER_CACHE_MIB; 0: off). */
  teacherCacheMiB?: number;
  signal?: AbortSignal;
  onEvent?: (event: TrainEvent) => void;
  onStatus?: (message: string) => void;
}

export interface RunResult {
  before?: DetectorEvalReport;
  after: DetectorEvalReport;
  teacher?: DetectorEvalReport;
  /** The student's agreement with the teacher on the evaluation split, before and after (when a teacher is loaded). */
  fidelity?: { before?: FidelityReport; after: FidelityReport };
  steps: number;
  stopped: boolean;
  /** Mean of each loss term over the first and the last tenth of the steps. */
  termTrend: Record<string, { first: number; last: number }>;
}

/** Evaluates a detector on a split, at a given input size, over the 20 VOC classes. */
export async function evaluateModel(model: ModelHandle, dataDir: string, split: string, inputSize: number, signal?: AbortSignal, onProgress?: (done: number, total: number) => void, runner?: GraphRunner) {
  const { dataset, loadImage } = await loadSplit(dataDir, split, model.manifest.classes);
  const mapping = mapVocClasses(model.manifest.classes).toModel;
  const classIndices = VOC_CLASSES.map((c) => mapping[c]).filter((i): i is number => i !== undefined);
  runner ??= { run: (x: tf.Tensor, outputs: readonly string[]) => model.graph.execute(x, outputs) };
  // The dataset's classes are kept before the 100-box cap, not filtered after it.
  const detect = createGflDetector(runner, model.manifest, { ...EVAL_DETECT_OPTIONS, inputSize, classIndices });
  return evaluateDetector(dataset.images, detect, {
    classNames: model.manifest.classes,
    classIndices,
    loadImage,
    signal,
    onProgress: onProgress && ((p) => onProgress(p.done, p.total)),
  });
}

/** The student's agreement with the teacher on a split (src/eval/fidelity.ts), at a given input size. */
export async function fidelityOnSplit(teacher: ModelHandle, student: ModelHandle, dataDir: string, split: string, inputSize: number, signal?: AbortSignal): Promise<FidelityReport> {
  const { dataset, loadImage } = await loadSplit(dataDir, split, student.manifest.classes);
  return measureFidelity(teacher, student, iterateBatches(dataset.images, loadImage, student.manifest, { batchSize: 2, seed: 0, shuffle: false, inputSize, signal }));
}

function trend(log: Record<string, number>[]): Record<string, { first: number; last: number }> {
  const k = Math.max(1, Math.floor(log.length / 10));
  const mean = (rows: Record<string, number>[], name: string) => rows.reduce((s, r) => s + (r[name] ?? 0), 0) / rows.length;
  const names = Object.keys(log[0] ?? {});
  return Object.fromEntries(names.map((n) => [n, { first: mean(log.slice(0, k), n), last: mean(log.slice(-k), n) }]));
}

export async function runExperiment(o: RunOptions): Promise<RunResult> {
  const { config, dataDir, outDir } = o;
  const status = o.onStatus ?? (() => undefined);
  const s = config.schedule;
  const unlabeled = config.data.unlabeled;
  const needTeacher = config.methods.length > 0 || o.evalTeacher || !!unlabeled || !!o.fidelity;
  // Everything that can fail is checked before the first write to outDir.
  const labelled = config.data.trainSplit !== NO_SPLIT;
  await checkSplits(dataDir, labelled ? [config.data.trainSplit, config.data.valSplit] : [config.data.valSplit]);
  if (unlabeled && !labelled && !photosTeach(config)) {
    throw new Error('Photos without annotations teach only through distillation methods: choose one (--methods), or let the detection loss train on the teacher\'s boxes (--pseudo-detection).');
  }
  const photos = unlabeled && photosTeach(config) ? unlabeledImages(unlabeled, config.data.maxUnlabeled) : undefined;
  if (unlabeled && !photos) status('the photos are not used: no method is chosen, and the detection loss trains on annotated images only (--pseudo-detection changes that)');
  if (!labelled && !photos) throw new Error(`--train-split ${NO_SPLIT} needs photos to train on (--unlabeled <folder>).`);
  if (needTeacher) checkManifest(config.teacher, 'teacher');
  checkManifest(config.student, 'student');
  if (outDir) checkOutDir(outDir, { resume: !!o.resume, overwrite: o.overwrite });
  const teacher = needTeacher ? loadModel(config.teacher, { trainable: false, name: 'teacher' }) : null;
  const student = loadModel(config.student, { trainable: true, name: 'student' });
  // Pruning by fading: the full-width student's planned channels fade out as it trains.
  const plan = config.prune && new Map(Object.entries(config.prune.keep));
  const fade = plan ? ChannelFade.create(student.graph, readModelArtifacts(readManifest(resolveManifest(config.student)).modelPath), plan, tappedNodes(student.manifest)) : undefined;
  if (plan) status(`the pruned channels of ${plan.size} convolutions fade to zero over ${config.prune!.fadeSteps} steps; the student is then cut to the plan`);
  const session = createSession({ teacher: config.methods.length || unlabeled ? teacher : null, student, methods: config.methods, detectionWeight: config.detectionWeight, seed: s.seed, trainOnly: config.trainOnly, ...(fade ? { keptTapChannels: fade.tapChannels } : {}) });
  const optimizer = new Optimizer(s.optimizer, { momentum: s.momentum, weightDecay: s.weightDecay, averageDecay: s.ema ?? 0 });
  const studentWeights = [...student.graph.variables.values()];
  /** The student evaluated and written at the end: the trained one, or its cut when pruning while training. */
  let final: ModelHandle = student;
  try {
    if (o.resume) {
      restoreCheckpoint(session, optimizer, o.resume);
      status(`resumed from step ${o.resume.step}`);
    }
    if (outDir) {
      mkdirSync(outDir, { recursive: true });
      writeFileSync(join(outDir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
      // A new run starts its log; a resumed one appends to the log in this folder (a new one when
      // it resumes into another folder).
      if (!o.resume || !existsSync(join(outDir, 'log.jsonl'))) writeFileSync(join(outDir, 'log.jsonl'), '');
    }
    const result: Partial<RunResult> = {};
    // Agreement with the teacher on the evaluation split (src/eval/fidelity.ts): steadier than mAP on few images.
    // `signal`: the run's before training; none after it, since a stopped run still evaluates and writes its student.
    const fidelityNow = async (model: ModelHandle, signal: AbortSignal | undefined): Promise<FidelityReport | undefined> => {
      if (!teacher) return undefined;
      try {
        return await fidelityOnSplit(teacher, model, dataDir, config.data.valSplit, s.inputSize, signal);
      } catch (error) {
        if (signal?.aborted) throw error;
        status(`agreement with the teacher not measured: ${(error as Error).message}`);
        return undefined;
      }
    };
    let fidelityBefore: FidelityReport | undefined;
    if (o.evalTeacher && teacher) {
      status(`evaluating the teacher on ${config.data.valSplit} ...`);
      result.teacher = await evaluateModel(teacher, dataDir, config.data.valSplit, s.inputSize, o.signal);
    }
    if (o.evalBefore !== false && !o.resume) {
      status(`evaluating the student before training on ${config.data.valSplit} ...`);
      result.before = await evaluateModel(student, dataDir, config.data.valSplit, s.inputSize, o.signal);
      fidelityBefore = await fidelityNow(student, o.signal);
    }
    const split = labelled ? await loadSplit(dataDir, config.data.trainSplit, student.manifest.classes) : undefined;
    const images: AnnotatedImage[] = [...(split?.dataset.images ?? []), ...(photos?.images ?? [])];
    const loadImage = combinedLoader((id) => split!.loadImage(id), photos?.load);
    status(
      `training on ${[split && `${split.dataset.images.length} images of ${config.data.trainSplit} (${split.dataset.summary.objectCount} objects)`, photos && `${photos.images.length} unlabelled photos (boxes: the teacher's detections above ${config.data.pseudoThreshold ?? DEFAULT_PSEUDO_THRESHOLD})`].filter(Boolean).join(' + ')}`,
    );
    const termLog: Record<string, number>[] = [];
    // The run record (run.json): the lab imports it into its history. A resumed run continues its own.
    const valIds = (await loadSplit(dataDir, config.data.valSplit, student.manifest.classes)).dataset.images.map((i) => i.id);
    const cardData: DataInput = {
      source: basename(resolve(dataDir)),
      train: split ? { name: config.data.trainSplit, ids: split.dataset.images.map((i) => i.id) } : null,
      val: { name: config.data.valSplit, ids: valIds },
      unlabeledPhotos: photos?.images.length ?? 0,
      ...(unlabeled ? { unlabeledSource: basename(resolve(unlabeled)) } : {}),
    };
    const teacherSha = needTeacher ? modelWeightsSha256(config.teacher) : null;
    const studentSha = modelWeightsSha256(config.student);
    const runPath = outDir ? join(outDir, RUN_FILE) : undefined;
    const previous = o.resume && runPath && existsSync(runPath) ? readPreviousRun(runPath) : undefined;
    let record: RunRecord = previous ?? newRunRecord({
      id: `cli-${Date.now().toString(36)}`,
      origin: 'cli',
      createdAt: new Date().toISOString(),
      projectVersion: PROJECT_VERSION,
      config,
      methodCatalog: METHODS,
      teacher: { name: teacher?.manifest.name ?? config.teacher, weightsSha256: teacherSha },
      student: { manifest: student.manifest, weightsSha256: studentSha },
      data: cardData,
      backend: o.backend ?? 'wasm',
    });
    const startStep = o.resume?.step ?? 0;
    const rows: LogRow[] = record.log.filter((r) => r.step <= startStep);
    record = { ...record, status: 'running', steps: startStep, log: rows };
    const now = () => new Date().toISOString();
    if (result.teacher) record = withEvaluation(record, runEvaluation('teacher', 0, config.data.valSplit, { ...result.teacher, inputSize: s.inputSize }), now());
    if (result.before) record = withEvaluation(record, runEvaluation('before', 0, config.data.valSplit, { ...result.before, inputSize: s.inputSize }), now());
    const writeRun = () => runPath && writeFileSync(runPath, runJson({ ...record, log: rows, updatedAt: now() }));
    writeRun();
    const ran = await train({
      session,
      optimizer,
      config,
      images,
      loadImage,
      startStep: o.resume?.step ?? 0,
      signal: o.signal,
      ...(o.teacherCacheMiB !== undefined ? { teacherCacheMiB: o.teacherCacheMiB } : {}),
      afterStep: fade && ((step) => fade.set(fadeScale(step, config.prune!.fadeSteps))),
      // Evaluation during training: between steps, every evalEvery steps (the mAP curve of run.json).
      gate: o.evalEvery
        ? async () => {
            const step = record.steps;
            if (step === 0 || step % o.evalEvery! !== 0 || record.evaluations.some((e) => e.target === 'after' && e.step === step) || o.signal?.aborted) return;
            const r = await optimizer.withAverages(studentWeights, () => evaluateModel(student, dataDir, config.data.valSplit, s.inputSize, o.signal));
            record = withEvaluation(record, runEvaluation('after', step, config.data.valSplit, { ...r, inputSize: s.inputSize }), now());
            status(`step ${step}: mAP ${r.mapAll === null ? 'n/a' : (100 * r.mapAll).toFixed(1)} on ${config.data.valSplit}`);
            writeRun();
          }
        : undefined,
      onEvent: (e) => {
        if (e.type === 'started') record.totalSteps = e.totalSteps;
        if (e.type === 'step') {
          termLog.push({ loss: e.loss, ...e.terms });
          const row = logRow(e);
          rows.push(row);
          record.steps = e.step;
          if (outDir) appendFileSync(join(outDir, 'log.jsonl'), `${JSON.stringify(row)}\n`);
        }
        o.onEvent?.(e);
      },
      saveCheckpoint: outDir
        ? async (c) => {
            const packed = packCheckpoint(c);
            writeFileSync(join(outDir, 'checkpoint.dlc'), packed);
            record = { ...record, checkpoint: { step: c.step, savedAt: c.savedAt, bytes: packed.byteLength } };
            writeRun();
          }
        : undefined,
    });
    // From here on the student is its weight average, when one is kept (the checkpoint has the raw weights).
    if (optimizer.swapAverages(studentWeights)) status(`the student's weights are now their moving average (decay ${s.ema})`);
    if (fade && plan) {
      // The faded channels are zero now: cut them, and from here on the student is the pruned graph.
      fade.set(0);
      const source = teacher ?? student;
      const cut = await pruneToPlan(await exportGraph(student.graph, { precision: 'float32' }), student.manifest, plan, { name: source.manifest.name, macs: profileGraph(source.graph).macs });
      final = { graph: graphFromArtifacts(cut.artifacts, { trainable: false, name: 'pruned-student' }), manifest: cut.manifest };
      status(`the faded channels are cut: ${cut.manifest.name}, ${cut.manifest.profile!.parameters.toLocaleString('en-US')} parameters`);
    }
    status(`evaluating the student after ${ran.step} steps ...`);
    const after = await evaluateModel(final, dataDir, config.data.valSplit, s.inputSize);
    const fidelityAfter = await fidelityNow(final, undefined);
    if (fidelityAfter) result.fidelity = { ...(fidelityBefore ? { before: fidelityBefore } : {}), after: fidelityAfter };
    record = withEvaluation({ ...record, status: ran.stopped ? 'stopped' : 'finished', steps: ran.step }, runEvaluation('after', ran.step, config.data.valSplit, { ...after, inputSize: s.inputSize }), now());
    writeRun();
    if (outDir) {
      const profile = profileGraph(final.graph);
      const precision = o.weightPrecision ?? 'float32';
      const card = buildModelCard({
        createdAt: now(),
        projectVersion: PROJECT_VERSION,
        model: { name: `${final.manifest.name}, distilled`, parameters: profile.parameters, macs: profile.macs, inputSize: student.manifest.input.size, weightPrecision: precision },
        teacher: { name: teacher?.manifest.name ?? config.teacher, weightsSha256: teacherSha },
        student: { manifest: student.manifest, weightsSha256: studentSha },
        config,
        methodCatalog: METHODS,
        steps: ran.step,
        backend: o.backend ?? 'wasm',
        data: cardData,
        evaluation: { split: config.data.valSplit, inputSize: s.inputSize, teacher: result.teacher ?? null, before: result.before ?? null, after: { ...after, step: ran.step } },
      });
      const exported = await exportGraph(final.graph, { precision, metadata: { [MODEL_CARD_METADATA_KEY]: card } });
      const { modelJson, weights } = artifactsToFiles(exported, 'model.bin');
      const dir = join(outDir, 'student');
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'model.json'), modelJson);
      writeFileSync(join(dir, 'model.bin'), weights);
      writeFileSync(join(dir, MODEL_CARD_FILE), `${JSON.stringify(card, null, 2)}\n`);
      writeFileSync(join(dir, MODEL_CARD_MARKDOWN), modelCardMarkdown(card));
      const manifest: ModelManifest = {
        ...final.manifest,
        name: `${final.manifest.name}, distilled`,
        model: 'model.json',
        profile: { parameters: profile.parameters, macs: profile.macs },
        description: `${student.manifest.name} after ${ran.step} steps of ${config.methods.length ? config.methods.map((m) => m.id).join(' + ') : 'plain fine-tuning'}${config.methods.length && config.detectionWeight > 0 ? ' + detection loss' : ''} from ${config.teacher}.`,
      };
      writeFileSync(join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
      writeFileSync(join(outDir, 'eval.json'), `${JSON.stringify({ teacher: result.teacher ?? null, before: result.before ?? null, after, steps: ran.step, ...(result.fidelity ? { fidelity: result.fidelity } : {}) }, stripImages, 2)}\n`);
    }
    return { ...result, after, steps: ran.step, stopped: ran.stopped, termTrend: trend(termLog) };
  } finally {
    if (final !== student) final.graph.dispose();
    fade?.dispose();
    session.dispose();
    optimizer.dispose();
    student.graph.dispose();
    teacher?.graph.dispose();
  }
}

/** The run.json of the run being resumed (one that does not read starts a new record). */
function readPreviousRun(path: string): RunRecord | undefined {
  try {
    return parseRunRecord(JSON.parse(readFileSync(path, 'utf8')), path);
  } catch {
    return undefined;
  }
}

/** eval.json keeps the scores, not every box of every image. */
function stripImages(key: string, value: unknown) {
  return key === 'images' ? undefined : value;
}
