import { create } from 'zustand';
import type { TeacherCacheStats } from '../train/teacher-cache';
import type { BackendReport } from '../worker/backend-types';
import type {
  CheckpointInfo,
  DataInfo,
  DerivationSummary,
  EvalSummary,
  EvalTarget,
  DiagnosisPart,
  LossDiagnosis,
  ImageDetections,
  LabInspection,
  LabExperiment,
  LossPoint,
  MethodRow,
  ModelInfo,
  ModelRole,
  PhotosInfo,
} from '../worker/lab';

/** Every async piece of the page is in one of these states; errors carry a message for people. */
export type Loadable<T> =
  | { status: 'idle' }
  | { status: 'loading'; detail?: string }
  | { status: 'ready'; value: T }
  | { status: 'error'; error: string };

export interface ShownImage {
  url: string;
  name: string;
}

export type TrainStatus = 'idle' | 'starting' | 'running' | 'pausing' | 'paused' | 'stopping' | 'finished' | 'stopped' | 'error';

export type { LossPoint };

export interface TrainingState {
  status: TrainStatus;
  step: number;
  totalSteps: number;
  stepsPerEpoch: number;
  epoch: number;
  lr: number;
  loss: number;
  gradNorm: number;
  /** Boxes the teacher gave photos without annotations, summed over this run's steps. */
  pseudoBoxes: number;
  /** The teacher's outputs kept between epochs, as of the last step (null: no cache in this run). */
  teacherCache: TeacherCacheStats | null;
  imagesPerSecond: number;
  /** Step events received for this run on this page (0: kernels still compiling, or a restored run). */
  stepsSeen: number;
  msPerStep: number;
  /** The batch size and input size of the run these timings belong to. */
  shape: { batchSize: number; inputSize: number } | null;
  etaSeconds: number;
  /** Steps whose loss was not finite (weights not updated), with the terms at fault. */
  skipped: { step: number; terms: string[] }[];
  /** Each loss part's gradient norm on the student, at the steps it was measured (oldest first). */
  gradientNorms: { step: number; norms: Record<string, number> }[];
  history: LossPoint[];
  error: string | null;
}

export interface InspectState {
  split: 'train' | 'val';
  imageId: string | null;
  ldObject: number;
  /** Detections shown from this score up. */
  scoreThreshold: number;
  imageUrl: string | null;
  result: Loadable<LabInspection>;
  /** Teacher/student map pairs on one colour range (default), or every map on its own. */
  sharedScale: boolean;
  /** Why the maps on screen may no longer match the student's weights (a step trained, another model), or null. */
  weightsChanged: string | null;
}

export interface EvalState {
  running: boolean;
  progress: { target: EvalTarget | DiagnosisPart; done: number; total: number } | null;
  reports: Partial<Record<EvalTarget, EvalSummary>>;
  /** Where the student loses to the teacher, when asked (cleared with the reports). */
  diagnosis?: LossDiagnosis | null;
  error: string | null;
}

export interface DeriveState {
  running: boolean;
  progress: { stage: string; done: number; total: number } | null;
  summary: DerivationSummary | null;
  error: string | null;
}

export interface LabState {
  backend: Loadable<BackendReport>;
  /** How the backend was asked for (the address, the panel, or automatically). */
  backendRequest: { source: 'url' | 'choice' | 'auto'; label: string } | null;
  deviceLost: string | null;
  methods: MethodRow[];
  config: LabExperiment | null;
  models: Record<ModelRole, Loadable<ModelInfo>>;
  /** A dropped model that failed: the model on screen stays. */
  modelNotice: Record<ModelRole, string | null>;
  pairProblems: string[];
  data: Loadable<DataInfo>;
  dataNotice: string | null;
  /** Photos without annotations (optional): a failed load keeps the ones before, with a notice. */
  photos: Loadable<PhotosInfo>;
  photosNotice: string | null;
  /** Experiment fields whose text is not a valid value (field key → label). */
  invalidFields: Record<string, string>;
  training: TrainingState;
  /** The curves of the run a new run replaced, kept on the charts for comparison. */
  previousRun: { history: LossPoint[]; label: string } | null;
  savedCheckpoint: CheckpointInfo | null;
  /** False where the browser offers no IndexedDB: checkpoints will not survive a reload. */
  persistent: boolean;
  inspect: InspectState;
  evaluation: EvalState;
  derivation: DeriveState;
  exporting: Loadable<{ fileName: string; bytes: number; name: string }>;
  configNotice: string | null;
  /** The quick look: any photo, either model. */
  image: ShownImage | null;
  detections: Loadable<ImageDetections>;
  scoreThreshold: number;
  notice: string | null;
}

export const initialTraining: TrainingState = {
  status: 'idle',
  step: 0,
  totalSteps: 0,
  stepsPerEpoch: 0,
  epoch: 0,
  lr: 0,
  loss: NaN,
  gradNorm: NaN,
  pseudoBoxes: 0,
  teacherCache: null,
  imagesPerSecond: 0,
  stepsSeen: 0,
  msPerStep: 0,
  shape: null,
  etaSeconds: 0,
  skipped: [],
  gradientNorms: [],
  history: [],
  error: null,
};

export const useLabStore = create<LabState>(() => ({
  backend: { status: 'idle' },
  backendRequest: null,
  deviceLost: null,
  methods: [],
  config: null,
  models: { teacher: { status: 'idle' }, student: { status: 'idle' } },
  modelNotice: { teacher: null, student: null },
  pairProblems: [],
  data: { status: 'idle' },
  dataNotice: null,
  photos: { status: 'idle' },
  photosNotice: null,
  invalidFields: {},
  training: initialTraining,
  previousRun: null,
  savedCheckpoint: null,
  persistent: true,
  inspect: { split: 'train', imageId: null, ldObject: 0, scoreThreshold: 0.3, imageUrl: null, result: { status: 'idle' }, weightsChanged: null, sharedScale: true },
  evaluation: { running: false, progress: null, reports: {}, error: null },
  derivation: { running: false, progress: null, summary: null, error: null },
  exporting: { status: 'idle' },
  configNotice: null,
  image: null,
  detections: { status: 'idle' },
  scoreThreshold: 0.35,
  notice: null,
}));

/** Whether the run holds the student (inspection, evaluation and export wait for a pause). */
export const isBusyTraining = (s: TrainStatus) => s === 'starting' || s === 'running' || s === 'pausing' || s === 'stopping';
export const isRunActive = (s: TrainStatus) => isBusyTraining(s) || s === 'paused';
