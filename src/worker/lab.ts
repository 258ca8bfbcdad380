/**
 * The lab behind comlink, run inside the worker: the only owner of the tfjs backend, the models,
 * the data and the training run. Every method takes and returns plain, structured-clonable data;
 * the work itself lives in plain modules beside this one (models, data, inspect, evaluation,
 * export-student, run-control, kv-store) that Node tests reach; this class only wires them.
 *
 * One run at a time trains; while it runs, model and data changes are refused, and inspection,
 * evaluation and export wait for a pause (they share the student's weights and the GPU queue).
 */
import * as tf from '@tensorflow/tfjs';
import * as Comlink from 'comlink';
import { decodeImageBlob } from '../data/decode-browser';
import type { ImageDecoder } from '../data/pipeline';
import type { ModelManifest } from '../models/manifest';
import { DEFAULT_DETECT_OPTIONS, detectGfl, type DetectOptions, type DetectResult } from '../detect/nanodet';
import { METHODS } from '../distill/registry';
import type { WeightPrecision } from '../graph/export';
import { packCheckpoint, restoreCheckpoint, unpackCheckpoint, type Checkpoint, type SavedTensor } from '../train/checkpoint';
import { defaultExperiment, parseExperiment, photosTeach, type ExperimentConfig } from '../train/config';
import { Optimizer } from '../train/optimizer';
import { checkPair, createSession, type DistillSession, type ModelHandle } from '../train/session';
import { NonFiniteLossError, train, type TrainEvent } from '../train/trainer';
import { deriveStudent as deriveFromTeacher, DEFAULT_DERIVATION } from '../derive/derive';
import { choiceRecord, deriveBest, photoSets, type CandidateChoice } from '../derive/candidates';
import { artifactsToFiles } from '../graph/export';
import { currentWebGpuDevice, selectBackend, type BackendName, type BackendReport } from './backend';
import { LabData, limit, openSource, type DataInfo, type DataInput, type SplitInfo } from './data';
import { combinedLoader, LabPhotos, type PhotosInfo } from './photos';
import { isPhotoPath } from '../data/voc/source';
import { evaluateModel, type EvalSummary } from './evaluation';
import { exportStudentZip } from './export-student';
import { inspectImage, mapBuffers, type InspectionResult } from './inspect';
import { openStore, type KeyValueStore } from './kv-store';
import { modelFromFiles, type NamedBytes } from './model-files';
import { buildHandle, checkModel, describeModel, fetchModel, runnerOf, type ModelInfo, type ModelRole } from './models';
import { RunControl, type RunState } from './run-control';
import { buildModelCard, type DataInput as CardData, type ModelCardData, type ScoreLike } from '../provenance/model-card';
import { logRow, type LogRow } from '../provenance/run-log';
import { newRunRecord, runEvaluation, withEvaluation, type RunRecord, type RunSummary } from '../provenance/run-record';
import { RunStore, type RunProblem, type StorageUse } from '../provenance/run-store';
import { readRunFile, runFileName, runJson, runZip } from '../provenance/run-file';
import { sha256Hex } from '../provenance/sha256';
import { PROJECT_VERSION } from '../provenance/version';
import { scoreSwaps, type SwapPart, type SwapScores } from '../eval/head-swap';

export type { PhotosInfo };
export type { LogRow, ModelCardData, RunProblem, RunRecord, RunSummary, StorageUse };
export type { DataInfo, DataInput, EvalSummary, InspectionResult, ModelInfo, ModelRole, NamedBytes, RunState, SplitInfo };

/** An inspection as the page shows it: which split, which training step of the student, which methods. */
export interface LabInspection extends InspectionResult {
  split: 'train' | 'val';
  /** Steps of training the student's weights had when the maps were made (0: as loaded). */
  studentStep: number;
  /** The methods (with their parameters) the maps were computed with. */
  methods: ExperimentConfig['methods'];
}

/** The experiment as the lab saves it: the core config plus the lab's image limits. */
export type LabExperiment = ExperimentConfig & {
  lab?: {
    maxTrainImages?: number;
    maxEvalImages?: number;
    /** Train on the photos without annotations alone (label-free); the split is then only evaluated. */
    photosOnly?: boolean;
    /** Evaluate the student on the evaluation split every this many steps while training (0 or absent: never). */
    evalEvery?: number;
    /** Memory for the teacher's outputs of images seen before, in MiB (absent: DEFAULT_TEACHER_CACHE_MIB; 0: off). */
    teacherCacheMiB?: number;
  };
};

export const DEFAULT_MANIFESTS: Record<ModelRole, string> = { teacher: 'nanodet.manifest.json', student: 'nanodet-student.manifest.json' };

/** A method as the UI lists it (plain data). */
export interface MethodRow {
  id: string;
  title: string;
  summary: string;
  citation: string;
  defaults: Record<string, unknown>;
  needs: string[];
  connectors: string;
}

export interface ImageDetections extends DetectResult {
  imageName: string;
  imageWidth: number;
  imageHeight: number;
  backend: string;
}

export interface CheckpointInfo {
  step: number;
  totalSteps: number;
  savedAt: string;
  reason: 'interval' | 'stopped' | 'finished';
  teacher: string;
  student: string;
  data: string;
  config: LabExperiment;
  bytes: number;
  /** The run in the history this checkpoint belongs to. */
  runId?: string;
}

/** The run history as the page lists it. */
export interface RunsList {
  runs: RunSummary[];
  problems: RunProblem[];
  usage: StorageUse | null;
  /** The run whose weights the student has now (evaluations are added to it). */
  currentRunId: string | null;
  persistent: boolean;
}

export type EvalTarget = 'teacher' | 'before' | 'now';

/** The parts of "where the student loses to the teacher" (src/eval/head-swap.ts). */
export type DiagnosisPart = SwapPart;

/**
 * Where the student now loses to the teacher, on the evaluation split: VOC mAP (all-point) of
 * both, and of the student with the teacher's class scores or boxes in its head, or its head fed
 * the teacher's neck outputs. A part the pair cannot swap is null, with the reason.
 */
export interface LossDiagnosis extends SwapScores {
  split: string;
  inputSize: number;
  images: number;
  /** The student's training step when it was measured. */
  step: number;
}

/** Training events as the page receives them (panel maps stay in the worker). */
export type TrainUpdate = Exclude<TrainEvent, { type: 'maps' }>;

/** Events the worker pushes to the page without being asked. */
export type LabEvent =
  | { type: 'device-lost'; message: string }
  | { type: 'train'; event: TrainUpdate }
  | { type: 'run-state'; state: RunState }
  | { type: 'checkpoint-saved'; info: CheckpointInfo }
  | { type: 'eval-progress'; target: EvalTarget | DiagnosisPart; done: number; total: number }
  | { type: 'derive-progress'; stage: string; done: number; total: number }
  | { type: 'run-eval'; step: number; mapAll: number | null }
  /** A run of the history was saved (a checkpoint, an evaluation, its end). */
  | { type: 'run-saved'; id: string };

/** What a person asks of a derivation: the MAC budget, how many of their photos to calibrate on, at what input side. */
export interface DeriveRequest {
  macs: number;
  images: number;
  calibrationSize?: number;
  /**
   * Derive this many students, each calibrated on its own `images` photos, and keep the one that
   * scores best on the annotated training split (default 1: no choice). Which photos calibrate
   * moves the student's mAP as much as any setting (README, "Choosing among photo sets").
   */
  candidates?: number;
  /** Input side the candidates are scored at (the experiment's); the teacher's when absent. */
  chooseSize?: number;
  /** At most this many training images score the candidates (the run's own cap; all when absent or 0). */
  chooseImages?: number;
}

/** How a choice among derived candidates went (the manifest's record), and how many training images scored them. */
export type DerivationChoice = CandidateChoice & { images: number };

/** What a derivation made, for the UI. */
export interface DerivationSummary {
  teacher: { parameters: number; macs: number };
  student: { parameters: number; macs: number };
  images: number;
  inputSize: number;
  prunedConvs: number;
  refitConvs: number;
  seconds: number;
  /** Present when several candidates were derived and one kept. */
  choice?: DerivationChoice;
}

/** One point of the loss curves: the total ('loss') and every term at a step. */
export interface LossPoint {
  step: number;
  values: Record<string, number>;
}

interface StoredCheckpoint extends CheckpointInfo {
  /** Older saves hold the bytes here; newer ones keep them with the run (runId). */
  packed?: Uint8Array;
  /** The run's curves up to the checkpoint, so a reload shows them again. */
  history?: LossPoint[];
}

interface LoadedModel {
  handle: ModelHandle;
  info: ModelInfo;
  /** Dropped (or derived) files, kept so a reload can rebuild the same model. */
  files?: NamedBytes[];
  /** The teacher's artifacts, which a derivation starts from. */
  artifacts: tf.io.ModelArtifacts;
  /** sha256 of the weights as loaded (computed when first asked). */
  weightsSha256?: string;
}

/** What trained the student's current weights: the run's config and the data it saw. */
interface TrainedWith {
  config: LabExperiment;
  data: CardData;
}

const browserDecode: ImageDecoder = (bytes, name) => decodeImageBlob(new Blob([bytes as Uint8Array<ArrayBuffer>]), name);

const messageOf = (e: unknown) => (e instanceof Error ? e.message : String(e));

export class Lab {
  private models = new Map<ModelRole, LoadedModel>();
  /** The student's weights as loaded: "before training", and where a new run starts. */
  private initialStudent?: Record<string, SavedTensor>;
  /** Steps of training the student's current weights have had. */
  private studentStep = 0;
  private data?: LabData;
  /** Photos without annotations (optional): trained on beside the split, and used to derive a student. */
  private photos?: LabPhotos;
  private backendReport?: BackendReport;
  private deviceLost?: string;
  private listeners: ((event: LabEvent) => void)[] = [];
  private store?: KeyValueStore;
  private run?: { control: RunControl; session: DistillSession; optimizer: Optimizer; config: LabExperiment };
  /** The session of the last run, kept for inspection (its connectors are trained). */
  private lastSession?: { session: DistillSession; config: LabExperiment };
  private beforeCache = new Map<string, EvalSummary>();
  private runStore?: RunStore;
  /** The run that trained the student's current weights, and its log. */
  private trained?: TrainedWith;
  private currentRun?: RunRecord;
  private log: LogRow[] = [];
  /** The latest evaluations, with the student's step for 'now', on one split and size. */
  private scores: { key: string; split: string; inputSize: number; reports: Partial<Record<EvalTarget, EvalSummary & { step: number }>> } | null = null;
  private queue: Promise<unknown> = Promise.resolve();

  private serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work, work);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private emit(event: LabEvent) {
    for (const l of this.listeners) l(event);
  }

  subscribe(listener: (event: LabEvent) => void): void {
    this.listeners.push(listener);
  }

  init(order?: BackendName[], options: { allowSoftware?: boolean } = {}): Promise<BackendReport> {
    return this.serial(async () => {
      if (this.backendReport) return this.backendReport;
      const report = await selectBackend(order, options);
      this.backendReport = report;
      this.store = await openStore();
      const storage = typeof navigator !== 'undefined' ? navigator.storage : undefined;
      this.runStore = new RunStore(this.store, async () => {
        const e = await storage?.estimate?.();
        return e && e.usage !== undefined && e.quota !== undefined ? { usage: e.usage, quota: e.quota } : null;
      });
      const device = report.backend === 'webgpu' ? currentWebGpuDevice() : undefined;
      void device?.lost.then((info) => {
        this.deviceLost = `The GPU device was lost (${info.reason}: ${info.message || 'no detail'}). Restart the compute worker (or reload the page); the last checkpoint is kept and training resumes from it.`;
        this.run?.control.stop();
        this.emit({ type: 'device-lost', message: this.deviceLost });
      });
      return report;
    });
  }

  /** For tests of the recovery path: destroys the GPU device as a driver reset would. */
  loseDevice(): void {
    currentWebGpuDevice()?.destroy();
  }

  methods(): MethodRow[] {
    return METHODS.map((m) => ({
      id: m.id,
      title: m.title,
      summary: m.summary,
      citation: m.citation,
      defaults: { ...(m.defaults as object) } as Record<string, unknown>,
      needs: [...m.needs],
      connectors: m.connectors,
    }));
  }

  defaultExperiment(): LabExperiment {
    return { ...defaultExperiment(), lab: { maxTrainImages: 0, maxEvalImages: 0 } };
  }

  parseExperiment(text: string, origin: string): LabExperiment {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw new Error(`${origin} is not valid JSON: ${messageOf(error)}`, { cause: error });
    }
    return parseExperiment(value, origin) as LabExperiment;
  }

  // ---- models -------------------------------------------------------------------------------

  /**
   * Loads a model for a role: the default, files a person dropped, or the files dropped before a
   * reload ('stored'). A failure leaves the model that was there in place.
   */
  loadModel(role: ModelRole, spec: { kind: 'default' } | { kind: 'files'; files: NamedBytes[] } | { kind: 'stored' }): Promise<ModelInfo> {
    return this.serial(async () => {
      this.assertUsable();
      if (this.run) throw new Error('Stop the training before changing a model.');
      // Read and check the new files before the old graph goes (graph names are per role).
      let files: NamedBytes[] | undefined;
      let source: { manifest: ModelManifest; artifacts: tf.io.ModelArtifacts; weightBytes: number; origin: string; manifestName: string };
      if (spec.kind === 'default') {
        const m = await fetchModel(`/models/${DEFAULT_MANIFESTS[role]}`, self.location.href);
        source = { ...m, origin: `models/${DEFAULT_MANIFESTS[role]}`, manifestName: DEFAULT_MANIFESTS[role] };
      } else {
        files = spec.kind === 'files' ? spec.files : await this.store?.get<NamedBytes[]>(`model:${role}`);
        if (!files) throw new Error(`No ${role} files were saved in this browser.`);
        const m = modelFromFiles(files);
        source = { ...m, manifestName: `${m.manifest.name}.manifest.json` };
      }
      checkModel(source.manifest, source.artifacts);
      return this.install(role, source, files, spec.kind);
    });
  }

  /** Puts a checked model in a role (the old one goes), and remembers its files for a reload. */
  private async install(
    role: ModelRole,
    source: { manifest: ModelManifest; artifacts: tf.io.ModelArtifacts; weightBytes: number; origin: string; manifestName: string; card?: ModelCardData },
    files: NamedBytes[] | undefined,
    kind: 'default' | 'files' | 'stored',
  ): Promise<ModelInfo> {
    this.models.get(role)?.handle.graph.dispose();
    this.models.delete(role);
    this.dropLastSession();
    const handle = buildHandle(role, source.manifest, source.artifacts);
    const info = describeModel(role, handle, { origin: source.origin, isDefault: kind === 'default', weightBytes: source.weightBytes, manifestName: source.manifestName });
    if (source.card) info.card = source.card;
    this.models.set(role, { handle, info, files, artifacts: source.artifacts });
    if (kind === 'files' && files) await this.store?.put(`model:${role}`, files);
    if (kind === 'default') await this.store?.delete(`model:${role}`);
    if (role === 'student') {
      this.initialStudent = await readVariables([...handle.graph.variables.values()]);
      this.studentStep = 0;
      this.trained = undefined;
      this.currentRun = undefined;
      this.scores = null;
      this.beforeCache.clear();
      if (this.data) this.data = await this.data.reload({ train: this.data.train.split, val: this.data.val.split }, handle.manifest.classes);
    }
    return info;
  }

  /**
   * Derives a smaller student from the teacher, calibrated on the loaded plain photos or else the
   * training split's images (their annotations unused), and makes it the student. With several
   * candidates, each is calibrated on its own photos and the one that scores best on the annotated
   * training split is kept; the evaluation split stays unseen. A failure keeps the student that was there.
   */
  deriveStudent(request: DeriveRequest): Promise<{ info: ModelInfo; summary: DerivationSummary }> {
    return this.serial(async () => {
      this.assertUsable();
      if (this.run) throw new Error('Stop the training before deriving a student.');
      const teacher = this.requireModel('teacher');
      if (!this.data && !this.photos) throw new Error('Load your photos first (a VOC folder or archive, or a folder of plain photos): the student is derived from them.');
      const count = request.candidates ?? 1;
      if (count > 1 && !this.data) throw new Error('Choosing among candidates scores them on annotated images: load a VOC folder or archive too, or derive one student.');
      // Calibration: the plain photos when there are some, else the training split's images (labels unused).
      const perSet = Math.max(0, Math.floor(request.images));
      const ids = this.photos ? this.photos.images(perSet * count).map((i) => i.id) : this.data!.train.images.map((i) => i.id).sort().slice(0, perSet * count);
      const sets = count > 1 ? photoSets(ids.length, perSet, count) : [[0, ids.length] as [number, number]];
      const load = this.photos ? this.photos.loader() : this.data!.loader('train');
      const origin = this.photos ? `${this.photos.info().label}` : `${this.data!.info().label}, split ${this.data!.train.split}`;
      const chooseSize = request.chooseSize ?? teacher.handle.manifest.input.size;
      // The data is loaded in the current student's label space; a derived student speaks the teacher's.
      const labelSpace = this.models.get('student')?.handle.manifest ?? teacher.handle.manifest;
      const chooseImages = this.data ? limit(this.data.train.images, request.chooseImages) : [];
      const { kept: derived, chosen, scores } = await deriveBest(
        sets,
        async ([from, to], i) => {
          const photos = [];
          for (const id of ids.slice(from, to)) photos.push(await load(id));
          return deriveFromTeacher(teacher.artifacts, teacher.handle.manifest, photos, {
            ...DEFAULT_DERIVATION,
            macs: request.macs,
            calibrationSize: request.calibrationSize,
            batchSize: 4,
            calibrationInfo: { source: count > 1 ? `${origin}, photos ${from + 1}–${to} in name order` : origin },
            onProgress: (stage, done, total) => this.emit({ type: 'derive-progress', stage: count > 1 ? `candidate ${i + 1} of ${count}: ${stage}` : stage, done, total }),
          });
        },
        async (candidate, i) => {
          const data = this.data!;
          const handle = buildHandle('teacher', candidate.manifest, candidate.artifacts);
          try {
            const report = await evaluateModel(handle, chooseImages, data.loader('train'), {
              inputSize: chooseSize,
              student: labelSpace,
              onProgress: (done, total) => this.emit({ type: 'derive-progress', stage: `candidate ${i + 1} of ${count}: scoring on ${data.train.split}`, done, total }),
            });
            return { mapAll: report.mapAll ?? 0, cocoAp: report.coco.ap ?? 0 };
          } finally {
            handle.graph.dispose();
          }
        },
      );
      let choice: DerivationChoice | undefined;
      if (count > 1) {
        const data = this.data!;
        const record = choiceRecord({ data: data.info().label, split: data.train.split, inputSize: chooseSize }, sets, scores, chosen);
        derived.manifest.derivedFrom = { ...derived.manifest.derivedFrom!, choice: record };
        choice = { ...record, images: chooseImages.length };
      }
      const { modelJson, weights } = artifactsToFiles(derived.artifacts, 'model.bin');
      const encoder = new TextEncoder();
      const files: NamedBytes[] = [
        { name: 'model.json', bytes: encoder.encode(modelJson) },
        { name: 'model.bin', bytes: weights },
        { name: 'manifest.json', bytes: encoder.encode(JSON.stringify({ ...derived.manifest, model: 'model.json' })) },
      ];
      const r = derived.report;
      const info = await this.install(
        'student',
        { manifest: derived.manifest, artifacts: derived.artifacts, weightBytes: weights.byteLength, origin: `derived here from ${r.calibration.images} photos${choice ? ` (best of ${count} candidates)` : ''}`, manifestName: 'derived-student.manifest.json' },
        files,
        'files',
      );
      const summary: DerivationSummary = {
        teacher: r.teacher,
        student: r.student,
        images: r.calibration.images,
        inputSize: r.calibration.inputSize,
        prunedConvs: r.units.filter((u) => u.kept < u.channels).length,
        refitConvs: r.refit.length,
        seconds: r.seconds,
        ...(choice ? { choice } : {}),
      };
      return { info, summary };
    });
  }

  /** Every reason the loaded pair cannot run these methods (checkPair's messages). */
  checkPair(methods: ExperimentConfig['methods']): string[] {
    const t = this.models.get('teacher');
    const s = this.models.get('student');
    if (!t || !s || methods.length === 0) return [];
    return checkPair(t.handle.manifest, s.handle.manifest, methods);
  }

  /** What survived the last page: dropped model files, and the latest checkpoint. */
  async stored(): Promise<{ teacherFiles: boolean; studentFiles: boolean; checkpoint: CheckpointInfo | null; history: LossPoint[]; persistent: boolean }> {
    const store = this.store;
    if (!store) return { teacherFiles: false, studentFiles: false, checkpoint: null, history: [], persistent: false };
    const [t, s, c] = await Promise.all([store.get('model:teacher'), store.get('model:student'), store.get<StoredCheckpoint>('checkpoint')]);
    return { teacherFiles: !!t, studentFiles: !!s, checkpoint: c ? withoutBytes(c) : null, history: c?.history ?? [], persistent: store.persistent };
  }

  async discardCheckpoint(): Promise<void> {
    await this.store?.delete('checkpoint');
  }

  // ---- data ---------------------------------------------------------------------------------

  loadData(input: DataInput, splits: { train: string; val: string }): Promise<DataInfo> {
    return this.serial(async () => {
      if (this.run) throw new Error('Stop the training before changing the data.');
      const student = this.requireModel('student');
      const source = await openSource(input);
      this.data = await LabData.load(source, splits, student.handle.manifest.classes, browserDecode);
      this.beforeCache.clear();
      return this.data.info();
    });
  }

  selectSplits(splits: { train: string; val: string }): Promise<DataInfo> {
    return this.serial(async () => {
      if (this.run) throw new Error('Stop the training before changing the splits.');
      if (!this.data) throw new Error('Load a VOC folder or archive first.');
      this.data = await this.data.reload(splits, this.requireModel('student').handle.manifest.classes);
      this.beforeCache.clear();
      return this.data.info();
    });
  }

  /** Photos without annotations (a folder or an archive of images). A failure keeps the photos already loaded. */
  loadPhotos(input: DataInput): Promise<PhotosInfo> {
    return this.serial(async () => {
      if (this.run) throw new Error('Stop the training before changing the photos.');
      this.photos = await LabPhotos.open(await openSource(input, isPhotoPath), browserDecode);
      return this.photos.info();
    });
  }

  clearPhotos(): Promise<void> {
    return this.serial(async () => {
      if (this.run) throw new Error('Stop the training before changing the photos.');
      this.photos = undefined;
    });
  }

  // ---- training -----------------------------------------------------------------------------

  /**
   * Trains the student; resolves when the run finishes or is stopped (a checkpoint is saved
   * either way). `resume` continues from the saved checkpoint with its own config; otherwise a
   * new run starts from the student's loaded weights.
   */
  async train(requested: LabExperiment, options: { resume: boolean }): Promise<{ step: number; stopped: boolean }> {
    this.assertUsable();
    if (this.run) throw new Error('A run is already training.');
    await this.queue;
    const teacher = this.requireModel('teacher');
    const student = this.requireModel('student');
    const data = this.data;
    if (!data) throw new Error('Load a VOC folder or archive before training.');
    let checkpoint: Checkpoint | undefined;
    let stored: StoredCheckpoint | undefined;
    let record: RunRecord | undefined;
    if (options.resume) {
      stored = await this.store?.get<StoredCheckpoint>('checkpoint');
      if (!stored) throw new Error('There is no saved checkpoint to resume from.');
      const packed = stored.packed ?? (stored.runId ? await this.runStore?.checkpoint(stored.runId) : undefined);
      if (!packed) throw new Error('The checkpoint of this run is no longer stored (was the run deleted from the history?).');
      checkpoint = unpackCheckpoint(packed);
      if (stored.runId) record = await this.runStore?.get(stored.runId).catch(() => undefined);
      if (stored.student !== student.info.name || stored.teacher !== teacher.info.name) {
        throw new Error(`The checkpoint was saved for ${stored.teacher} → ${stored.student}; load those models (now ${teacher.info.name} → ${student.info.name}) to resume it.`);
      }
      if (stored.config.data.trainSplit !== data.train.split) {
        throw new Error(`The checkpoint trained on split "${stored.config.data.trainSplit}"; select it (now "${data.train.split}") to resume.`);
      }
    }
    const config = parseExperiment(checkpoint?.config ?? requested, 'the experiment') as LabExperiment;
    config.lab = (stored?.config ?? requested).lab;
    if (config.prune) {
      throw new Error('This experiment prunes while training ("prune": channels fade out, then the student is cut), which runs from the command line: npm run distill -- --config <this experiment> --data <VOC folder>. Remove "prune" to train it here.');
    }
    // Photos teach through the methods (or pseudo-box detection); otherwise they would add steps and teach nothing.
    const photos = this.photos && photosTeach(config) ? this.photos : undefined;
    if (config.lab?.photosOnly && !photos) {
      throw new Error(this.photos ? 'Training on the photos alone needs a distillation method: the detection loss keeps to annotated images. Choose a method, or untick "train on the photos alone".' : 'Training on the photos alone needs photos: load a photo folder or archive, or untick "train on the photos alone".');
    }
    const labelled = config.lab?.photosOnly ? [] : limit(data.train.images, config.lab?.maxTrainImages);
    const images = [...labelled, ...(photos?.images(config.data.maxUnlabeled) ?? [])];
    config.data.unlabeled = photos?.info().label;
    this.dropLastSession();
    const session = createSession({ teacher: config.methods.length || photos ? teacher.handle : null, student: student.handle, methods: config.methods, detectionWeight: config.detectionWeight, seed: config.schedule.seed, trainOnly: config.trainOnly });
    const optimizer = new Optimizer(config.schedule.optimizer, { momentum: config.schedule.momentum, weightDecay: config.schedule.weightDecay, averageDecay: config.schedule.ema ?? 0 });
    const studentWeights = [...student.handle.graph.variables.values()];
    try {
      if (checkpoint) restoreCheckpoint(session, optimizer, checkpoint);
      else if (this.initialStudent) assignVariables([...student.handle.graph.variables.values()], this.initialStudent);
      this.studentStep = checkpoint?.step ?? 0;
    } catch (error) {
      session.dispose();
      optimizer.dispose();
      throw error;
    }
    const evalImages = limit(data.val.images, config.lab?.maxEvalImages);
    const trained: TrainedWith = {
      config,
      data: {
        source: data.source.label,
        train: { name: data.train.split, ids: labelled.map((i) => i.id) },
        val: { name: data.val.split, ids: evalImages.map((i) => i.id) },
        unlabeledPhotos: images.length - labelled.length,
        unlabeledSource: photos?.info().label,
      },
    };
    const startStep = checkpoint?.step ?? 0;
    record ??= newRunRecord({
      id: newRunId(),
      origin: 'lab',
      createdAt: new Date().toISOString(),
      projectVersion: PROJECT_VERSION,
      config,
      methodCatalog: METHODS,
      teacher: { name: teacher.info.name, weightsSha256: weightsHash(teacher) },
      student: { manifest: student.handle.manifest, weightsSha256: weightsHash(student) },
      data: trained.data,
      backend: this.backendReport?.backend ?? 'unknown',
    });
    const log: LogRow[] = record.log.filter((r) => r.step <= startStep);
    record = { ...record, status: 'running', log, steps: startStep, backend: this.backendReport?.backend ?? record.backend };
    delete record.error;
    const history: LossPoint[] = checkpoint
      ? log.length > 0
        ? log.map((r) => ({ step: r.step, values: { loss: r.loss, ...r.terms } }))
        : (stored?.history ?? []).filter((p) => p.step <= checkpoint.step)
      : [];
    try {
      await this.saveRun(record);
    } catch (error) {
      session.dispose();
      optimizer.dispose();
      throw error;
    }
    this.trained = trained;
    this.currentRun = record;
    this.log = log;
    // The run's record: evaluations (during training, or asked for while paused) update it too.
    const update = (patch: Partial<RunRecord>) => (this.currentRun = { ...(this.currentRun ?? record), ...patch });
    const evalEvery = Math.max(0, Math.floor(config.lab?.evalEvery ?? 0));
    let lastEvalStep = -1;
    /** The evaluation during training: the student now on the evaluation split, kept in the run and for the card. */
    const evaluateNow = async () => {
      if (this.studentStep === lastEvalStep) return;
      lastEvalStep = this.studentStep;
      const summary = await optimizer.withAverages(studentWeights, () => evaluateModel(student.handle, evalImages, data.loader('val'), { inputSize: config.schedule.inputSize, student: student.handle.manifest }));
      const key = `${data.val.split}|${config.schedule.inputSize}|${evalImages.length}`;
      await this.keepScores(key, data.val.split, config.schedule.inputSize, this.studentStep === 0 ? { before: summary } : { now: summary });
      this.emit({ type: 'run-eval', step: this.studentStep, mapAll: summary.mapAll });
    };
    const control = new RunControl((state) => this.emit({ type: 'run-state', state }));
    this.run = { control, session, optimizer, config };
    let totalSteps = 0;
    try {
      const result = await train({
        session,
        optimizer,
        config,
        images,
        loadImage: combinedLoader(data.loader('train'), photos?.loader()),
        startStep: checkpoint?.step ?? 0,
        signal: control.signal,
        teacherCacheMiB: config.lab?.teacherCacheMiB,
        gate: async () => {
          await control.gate();
          if (evalEvery > 0 && this.studentStep % evalEvery === 0 && !control.signal.aborted) await evaluateNow();
        },
        onEvent: (event) => {
          if (event.type === 'maps') return;
          if (event.type === 'started') totalSteps = event.totalSteps;
          if (event.type === 'step') {
            this.studentStep = event.step;
            history.push({ step: event.step, values: { loss: event.loss, ...event.terms } });
            log.push(logRow(event));
          }
          this.emit({ type: 'train', event });
        },
        saveCheckpoint: async (c) => {
          const packed = packCheckpoint({ ...c, config });
          const current = update({ log: [...log], steps: c.step, totalSteps, updatedAt: c.savedAt, checkpoint: { step: c.step, savedAt: c.savedAt, bytes: packed.byteLength } });
          await this.saveRun(current, packed);
          const info = await this.saveCheckpoint(c, packed, totalSteps, config, teacher.info.name, student.info.name, data.source.label, history, current.id);
          this.emit({ type: 'checkpoint-saved', info });
        },
      });
      if (evalEvery > 0) await evaluateNow();
      update({ status: result.stopped ? 'stopped' : 'finished' });
      return result;
    } catch (error) {
      update({ status: 'error', error: messageOf(error) });
      if (this.deviceLost) throw new Error(this.deviceLost, { cause: error });
      if (error instanceof NonFiniteLossError) throw error;
      throw new Error(`Training stopped with an error: ${messageOf(error)} The last checkpoint is kept; fix the cause and resume.`, { cause: error });
    } finally {
      this.run = undefined;
      // The student the person now evaluates and exports is the weight average, when one is kept
      // (a resume restores the raw weights and the average from the checkpoint).
      optimizer.swapAverages(studentWeights);
      optimizer.dispose();
      this.lastSession = { session, config };
      const current = update({ log: [...log], steps: this.studentStep, totalSteps: totalSteps || (this.currentRun?.totalSteps ?? 0), updatedAt: new Date().toISOString() });
      await this.saveRun(current).catch(() => undefined);
    }
  }

  /** The pointer to the latest checkpoint (its bytes are with the run in the history). */
  private async saveCheckpoint(
    c: Checkpoint,
    packed: Uint8Array,
    totalSteps: number,
    config: LabExperiment,
    teacher: string,
    student: string,
    data: string,
    history: LossPoint[],
    runId: string,
  ): Promise<CheckpointInfo> {
    const info: CheckpointInfo = { step: c.step, totalSteps, savedAt: c.savedAt, reason: 'interval', teacher, student, data, config, bytes: packed.byteLength, runId };
    await this.store?.put('checkpoint', { ...info, history } satisfies StoredCheckpoint);
    return info;
  }

  pause(): void {
    this.run?.control.pause();
  }

  resume(): void {
    this.run?.control.resume();
  }

  stop(): void {
    this.run?.control.stop();
  }

  // ---- inspection, evaluation, export ---------------------------------------------------------

  inspect(split: 'train' | 'val', imageId: string, config: LabExperiment, options: { ldObject?: number; scoreThreshold?: number } = {}): Promise<LabInspection> {
    return this.serial(async () => {
      this.assertIdle('inspect an image');
      const data = this.requireData();
      const entry = data.split(split).images.find((i) => i.id === imageId);
      if (!entry) throw new Error(`Image "${imageId}" is not in the ${split} split.`);
      const image = await data.loader(split)(imageId);
      const { session, temporary } = this.inspectionSession(config);
      const methods = (this.run?.config ?? config).methods;
      try {
        const result = await inspectImage(session, image, imageId, entry.objects, {
          inputSize: this.run?.config.schedule.inputSize ?? config.schedule.inputSize,
          methods,
          ...options,
        });
        const out: LabInspection = { ...result, split, studentStep: this.studentStep, methods: structuredClone(methods) };
        return Comlink.transfer(out, mapBuffers(result.maps));
      } finally {
        if (temporary) session.dispose();
      }
    });
  }

  /** The image file's bytes, for the page to show. */
  imageBytes(split: 'train' | 'val', imageId: string): Promise<Uint8Array> {
    return this.serial(async () => {
      const bytes = (await this.requireData().split(split).readImage(imageId)).slice();
      return Comlink.transfer(bytes, [bytes.buffer]);
    });
  }

  /** The running or last session when its methods match, else a fresh one (random connectors). */
  private inspectionSession(config: LabExperiment): { session: DistillSession; temporary: boolean } {
    const same = (c: LabExperiment) => JSON.stringify(c.methods) === JSON.stringify(config.methods);
    if (this.run) return { session: this.run.session, temporary: false };
    if (this.lastSession && same(this.lastSession.config)) return { session: this.lastSession.session, temporary: false };
    const teacher = this.requireModel('teacher').handle;
    const session = createSession({ teacher, student: this.requireModel('student').handle, methods: config.methods, detectionWeight: 1, seed: config.schedule.seed });
    return { session, temporary: true };
  }

  evaluate(targets: EvalTarget[], config: LabExperiment): Promise<Partial<Record<EvalTarget, EvalSummary>>> {
    return this.serial(async () => {
      this.assertIdle('evaluate');
      const data = this.requireData();
      const student = this.requireModel('student');
      const teacher = this.requireModel('teacher');
      const inputSize = config.schedule.inputSize;
      const images = limit(data.val.images, config.lab?.maxEvalImages);
      const loader = data.loader('val');
      const out: Partial<Record<EvalTarget, EvalSummary>> = {};
      const key = `${data.val.split}|${inputSize}|${images.length}`;
      for (const target of targets) {
        const progress = (done: number, total: number) => this.emit({ type: 'eval-progress', target, done, total });
        const run = (h: ModelHandle) => evaluateModel(h, images, loader, { inputSize, student: student.handle.manifest, onProgress: progress });
        if (target === 'teacher') out.teacher = await run(teacher.handle);
        else if (target === 'now') out.now = await run(student.handle);
        else {
          const cached = this.beforeCache.get(key);
          if (cached) {
            out.before = cached;
            continue;
          }
          const vars = [...student.handle.graph.variables.values()];
          const current = await readVariables(vars);
          try {
            if (this.initialStudent) assignVariables(vars, this.initialStudent);
            out.before = await run(student.handle);
          } finally {
            assignVariables(vars, current);
          }
          this.beforeCache.set(key, out.before);
        }
      }
      await this.keepScores(key, data.val.split, inputSize, out);
      return out;
    });
  }

  /** Where the student now loses to the teacher, on the evaluation split (five evaluation passes). */
  diagnose(config: LabExperiment): Promise<LossDiagnosis> {
    return this.serial(async () => {
      this.assertIdle('evaluate');
      const data = this.requireData();
      const student = this.requireModel('student').handle;
      const teacher = this.requireModel('teacher').handle;
      const inputSize = config.schedule.inputSize;
      const images = limit(data.val.images, config.lab?.maxEvalImages);
      const loader = data.loader('val');
      const scores = await scoreSwaps(student, teacher, async (part, model, runner) => {
        const onProgress = (done: number, total: number) => this.emit({ type: 'eval-progress', target: part, done, total });
        return (await evaluateModel(model, images, loader, { inputSize, student: student.manifest, runner, onProgress })).mapAll;
      });
      return { split: data.val.split, inputSize, images: images.length, step: this.studentStep, ...scores };
    });
  }

  exportStudent(precision: WeightPrecision): Promise<{ zip: Uint8Array; fileName: string; weightBytes: number; name: string }> {
    return this.serial(async () => {
      this.assertIdle('export');
      const student = this.requireModel('student');
      const out = await exportStudentZip(student.handle, { precision, step: this.studentStep, macs: student.info.macs, card: (model) => this.modelCard(model) });
      return Comlink.transfer({ zip: out.zip, fileName: out.fileName, weightBytes: out.weightBytes, name: out.manifest.name }, [out.zip.buffer as ArrayBuffer]);
    });
  }

  /** Detections on any photo (the quick look), with either model. */
  detect(role: ModelRole, image: Blob, imageName: string, options: Partial<DetectOptions> = {}): Promise<ImageDetections> {
    return this.serial(async () => {
      this.assertIdle('detect');
      const model = this.requireModel(role);
      const pixels = await decodeImageBlob(image, imageName);
      const result = await detectGfl(runnerOf(model.handle), model.handle.manifest, pixels, { ...DEFAULT_DETECT_OPTIONS, ...options });
      return { ...result, imageName, imageWidth: pixels.width, imageHeight: pixels.height, backend: tf.getBackend() };
    });
  }

  memory(): { numTensors: number; numBytes: number } {
    const { numTensors, numBytes } = tf.memory();
    return { numTensors, numBytes };
  }

  // ---- provenance: the model card, the run log, the run history -------------------------------

  /** How the student's current weights were made, for its export. */
  private modelCard(model: Parameters<NonNullable<Parameters<typeof exportStudentZip>[1]['card']>>[0]): ModelCardData {
    const teacher = this.requireModel('teacher');
    const student = this.requireModel('student');
    const trained = this.studentStep > 0 ? this.trained : undefined;
    const data = this.data;
    const s = this.scores;
    const now = s?.reports.now;
    // Only the student after training carries a step; the teacher and the student before training have none.
    const score = (r: (EvalSummary & { step: number }) | undefined, step?: number): ScoreLike | null => {
      if (!r) return null;
      const { step: _step, ...rest } = r;
      return step !== undefined ? { ...rest, step } : rest;
    };
    return buildModelCard({
      createdAt: new Date().toISOString(),
      projectVersion: PROJECT_VERSION,
      model,
      teacher: { name: teacher.info.name, weightsSha256: weightsHash(teacher) },
      student: { manifest: student.handle.manifest, weightsSha256: weightsHash(student) },
      config: trained?.config ?? null,
      methodCatalog: METHODS,
      steps: this.studentStep,
      backend: this.backendReport?.backend ?? 'unknown',
      data: trained?.data ?? (data ? { source: data.source.label, train: null, val: { name: data.val.split, ids: data.val.images.map((i) => i.id) }, unlabeledPhotos: 0 } : null),
      evaluation: s
        ? { split: s.split, inputSize: s.inputSize, teacher: score(s.reports.teacher), before: score(s.reports.before), after: now && now.step === this.studentStep ? score(now, now.step) : null }
        : undefined,
    });
  }

  /** Keeps the latest evaluations for the card, and adds them to the run that trained the student. */
  private async keepScores(key: string, split: string, inputSize: number, out: Partial<Record<EvalTarget, EvalSummary>>) {
    if (!this.scores || this.scores.key !== key) this.scores = { key, split, inputSize, reports: {} };
    for (const [target, r] of Object.entries(out) as [EvalTarget, EvalSummary][]) this.scores.reports[target] = { ...r, step: target === 'now' ? this.studentStep : 0 };
    let run = this.currentRun;
    if (!run || !this.runStore) return;
    const now = new Date().toISOString();
    for (const [target, r] of Object.entries(out) as [EvalTarget, EvalSummary][]) {
      run = withEvaluation(run, runEvaluation(target === 'now' ? 'after' : target, target === 'now' ? this.studentStep : 0, split, r), now);
    }
    this.currentRun = run;
    await this.saveRun(run);
  }

  private async saveRun(record: RunRecord, checkpoint?: Uint8Array): Promise<void> {
    await this.runStore?.save(record, checkpoint);
    this.emit({ type: 'run-saved', id: record.id });
  }

  /** The current (or last) run's log, one row per step, as log.jsonl has it; after a reload, the saved run's. */
  async runLog(): Promise<{ rows: LogRow[]; name: string | null }> {
    if (this.currentRun) return { rows: this.run ? [...this.log] : this.currentRun.log.length >= this.log.length ? this.currentRun.log : [...this.log], name: this.currentRun.name };
    const pointer = await this.store?.get<StoredCheckpoint>('checkpoint');
    const record = pointer?.runId ? await this.runStore?.get(pointer.runId).catch(() => undefined) : undefined;
    return { rows: record?.log ?? [], name: record?.name ?? null };
  }

  async runs(): Promise<RunsList> {
    const store = this.requireRunStore();
    const [{ runs, problems }, usage] = await Promise.all([store.list(), store.usage()]);
    return { runs, problems, usage, currentRunId: this.currentRun?.id ?? null, persistent: this.store?.persistent ?? false };
  }

  /** Full records (with their logs), for comparing runs. */
  async runRecords(ids: string[]): Promise<RunRecord[]> {
    const store = this.requireRunStore();
    return Promise.all(ids.map((id) => store.get(id)));
  }

  async renameRun(id: string, name: string): Promise<void> {
    const next = await this.requireRunStore().rename(id, name);
    if (this.currentRun?.id === id) this.currentRun = { ...this.currentRun, name: next.name };
  }

  async deleteRun(id: string): Promise<void> {
    if (this.run && this.currentRun?.id === id) throw new Error('This run is training: stop it before deleting it.');
    await this.requireRunStore().delete(id);
    if (this.currentRun?.id === id) this.currentRun = undefined;
    const pointer = await this.store?.get<StoredCheckpoint>('checkpoint');
    if (pointer?.runId === id) await this.store?.delete('checkpoint');
  }

  /** Frees a run's checkpoint (its curves, evaluations and config stay); it can no longer be resumed. */
  async dropRunCheckpoint(id: string): Promise<void> {
    if (this.run && this.currentRun?.id === id) throw new Error('This run is training: stop it before freeing its checkpoint.');
    const next = await this.requireRunStore().dropCheckpoint(id);
    if (this.currentRun?.id === id) this.currentRun = { ...this.currentRun, checkpoint: null };
    const pointer = await this.store?.get<StoredCheckpoint>('checkpoint');
    if (pointer?.runId === id) await this.store?.delete('checkpoint');
    this.emit({ type: 'run-saved', id: next.id });
  }

  /** Removes a stored entry that does not read. */
  async discardRunEntry(key: string): Promise<void> {
    await this.requireRunStore().discard(key);
  }

  /** A run as one file: .zip (record + checkpoint) or .json (the record). */
  async exportRun(id: string, format: 'zip' | 'json'): Promise<{ bytes: Uint8Array; fileName: string }> {
    const store = this.requireRunStore();
    const record = await store.get(id);
    const bytes = format === 'zip' ? runZip(record, await store.checkpoint(id)) : new TextEncoder().encode(runJson(record));
    return Comlink.transfer({ bytes, fileName: runFileName(record, format) }, [bytes.buffer as ArrayBuffer]);
  }

  /** Adds a run from a file (.json or .zip; the lab's export or the command line's run.json) to the history. */
  async importRun(name: string, bytes: Uint8Array): Promise<RunSummary> {
    const { record, checkpoint } = readRunFile(name, bytes);
    const imported = await this.requireRunStore().import(record, checkpoint, newRunId());
    const { log: _log, ...summary } = imported;
    return { ...summary, logRows: imported.log.length };
  }

  /**
   * Makes a run of the history the one to resume: its checkpoint becomes the saved checkpoint,
   * and its curves come back. Resume then continues it (with its own config).
   */
  async chooseRun(id: string): Promise<{ info: CheckpointInfo; history: LossPoint[] }> {
    if (this.run) throw new Error('Stop the training before choosing another run.');
    const store = this.requireRunStore();
    const record = await store.get(id);
    if (!record.checkpoint || !(await store.checkpoint(id))) throw new Error(`"${record.name}" has no checkpoint stored (a run imported from run.json alone): import its .zip to resume it.`);
    const history = record.log.map((r) => ({ step: r.step, values: { loss: r.loss, ...r.terms } }));
    const info: CheckpointInfo = {
      step: record.checkpoint.step,
      totalSteps: record.totalSteps,
      savedAt: record.checkpoint.savedAt,
      reason: 'interval',
      teacher: record.teacher.name,
      student: record.student.name,
      data: record.data?.source ?? '',
      config: record.config as LabExperiment,
      bytes: record.checkpoint.bytes,
      runId: id,
    };
    await this.store?.put('checkpoint', { ...info, history } satisfies StoredCheckpoint);
    return { info, history };
  }

  private requireRunStore(): RunStore {
    if (!this.runStore) throw new Error('The worker has no storage yet: call init() first.');
    return this.runStore;
  }

  // ---- helpers ------------------------------------------------------------------------------

  private dropLastSession() {
    this.lastSession?.session.dispose();
    this.lastSession = undefined;
  }

  private requireModel(role: ModelRole): LoadedModel {
    const m = this.models.get(role);
    if (!m) throw new Error(`No ${role} model is loaded.`);
    return m;
  }

  private requireData(): LabData {
    if (!this.data) throw new Error('Load a VOC folder or archive first.');
    return this.data;
  }

  private assertIdle(what: string) {
    this.assertUsable();
    if (this.run && this.run.control.state !== 'paused') throw new Error(`Pause or stop the training to ${what}: the run is using the student's weights.`);
  }

  private assertUsable() {
    if (this.deviceLost) throw new Error(this.deviceLost);
    if (!this.backendReport) throw new Error('The worker has no backend yet: call init() first.');
  }
}

let runCounter = 0;
/** A run id: time, then a counter and a random part (unique within and across pages). */
function newRunId(): string {
  return `${Date.now().toString(36)}-${(runCounter++).toString(36)}${Math.random().toString(36).slice(2, 8)}`;
}

/** sha256 of a model's weights as loaded (cached on the model). */
function weightsHash(model: LoadedModel): string | null {
  if (model.weightsSha256) return model.weightsSha256;
  const data = model.artifacts.weightData;
  if (!data) return null;
  model.weightsSha256 = sha256Hex(new Uint8Array(tf.io.CompositeArrayBuffer.join(data)));
  return model.weightsSha256;
}

function withoutBytes(c: StoredCheckpoint): CheckpointInfo {
  const { packed: _packed, history: _history, ...info } = c;
  return info;
}

async function readVariables(vars: readonly tf.Variable[]): Promise<Record<string, SavedTensor>> {
  const out: Record<string, SavedTensor> = {};
  const values = await Promise.all(vars.map((v) => v.data()));
  vars.forEach((v, i) => (out[v.name] = { shape: [...v.shape], values: Float32Array.from(values[i] as Float32Array) }));
  return out;
}

function assignVariables(vars: readonly tf.Variable[], saved: Record<string, SavedTensor>) {
  for (const v of vars) {
    const s = saved[v.name];
    if (!s) continue;
    const t = tf.tensor(s.values, s.shape, 'float32');
    v.assign(t);
    t.dispose();
  }
}
