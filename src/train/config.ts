/**
 * An experiment's configuration: everything needed to rerun a distillation, as plain JSON. The
 * lab saves and loads it; the command line accepts it.
 */
import { METHODS, type MethodId } from '../distill/registry';
import { withRepairRecipe } from './repair-recipe';

export interface MethodConfig {
  id: MethodId;
  /** Overrides of the method's paper defaults. */
  params?: Record<string, unknown>;
  /** Extra multiplier on the method's own weighted loss. Default 1. */
  scale?: number;
}

export interface ScheduleConfig {
  epochs: number;
  /** When set (> 0): train exactly this many steps, passing over the images as often as needed (overrides epochs). */
  steps?: number;
  batchSize: number;
  /** Side of the square input the models run at (a multiple of 32). */
  inputSize: number;
  optimizer: 'sgd' | 'adam';
  lr: number;
  momentum: number;
  weightDecay: number;
  warmupSteps: number;
  /** Clip gradients to this global L2 norm (NanoDet: 35); 0 disables. */
  clipNorm: number;
  flipProbability: number;
  /**
   * Random crops: each training image is cut to a window whose sides are a uniform fraction in
   * [cropScale, 1] of its own, before the letterbox (objects whose centre falls outside are left
   * out). 1 or absent: no crop.
   */
  cropScale?: number;
  seed: number;
  /**
   * Decay of an exponential moving average of the student's weights (e.g. 0.99), which is what
   * is evaluated and exported; training goes on from the raw weights. 0 or absent: no average.
   */
  ema?: number;
}

export interface ExperimentConfig {
  configVersion: 1;
  teacher: string;
  student: string;
  data: {
    source?: string;
    trainSplit: string;
    valSplit: string;
    /** A folder or archive of photos without annotations, trained on beside (or instead of) the split. */
    unlabeled?: string;
    /** Use at most this many of the unlabelled photos (0 or absent: all). */
    maxUnlabeled?: number;
    /** Teacher detections above this score are the boxes of unlabelled photos (default 0.4). */
    pseudoThreshold?: number;
    /**
     * Also train the detection loss on the teacher's boxes of unlabelled photos. Off by default:
     * measured, the GFL loss on pseudo boxes pulls a derived student down (see the README); the
     * photos then serve the distillation methods, with pseudo boxes for those that need boxes.
     */
    pseudoDetection?: boolean;
    /**
     * With both annotated images and photos: this many annotated images in every batch (the rest
     * photos; an epoch is one pass over the photos). 0 or absent: images drawn alike, so a few
     * annotated images among many photos reach the detection loss in few batches.
     */
    annotatedPerBatch?: number;
  };
  /** Weight of the student's own GFL detection loss (0 = distillation only). */
  detectionWeight: number;
  methods: MethodConfig[];
  schedule: ScheduleConfig;
  /**
   * A regular expression over the student's weight names: only matching weights train, the rest
   * keep their values (absent: every weight trains). E.g. "split_(29|3[0-3])$" trains NanoDet's
   * last head convolutions alone.
   */
  trainOnly?: string;
  /**
   * Prune while training (src/derive/fade.ts): the channels a plan cuts fade to zero over the
   * first `fadeSteps` steps, and the run's student is then cut to the plan. `keep` maps each
   * pruned convolution to the output channels it keeps (a derivation's plan, derivation.json).
   */
  prune?: { keep: Record<string, number[]>; fadeSteps: number };
  /** Save a checkpoint every this many steps (and when stopped). */
  checkpointEvery: number;
  /**
   * Measure each loss part's share of the gradient at the first step and every this many steps
   * (0: never). Each measurement costs about one step per part.
   */
  gradientNormsEvery?: number;
}

export const DEFAULT_SCHEDULE: ScheduleConfig = {
  epochs: 12,
  batchSize: 4,
  inputSize: 416,
  // Fine-tuning a pretrained student with small batches: AdamW at 1e-4 is stable where SGD at
  // NanoDet's from-scratch rates diverges (measured on the fixture: see src/train/train.test.ts).
  optimizer: 'adam',
  lr: 1e-4,
  momentum: 0.9,
  weightDecay: 0.05,
  warmupSteps: 20,
  clipNorm: 35,
  flipProbability: 0.5,
  seed: 1,
};

export function defaultExperiment(): ExperimentConfig {
  return {
    configVersion: 1,
    teacher: 'nanodet.manifest.json',
    student: 'nanodet-student.manifest.json',
    data: { trainSplit: 'train', valSplit: 'val' },
    detectionWeight: 1,
    methods: [],
    schedule: { ...DEFAULT_SCHEDULE },
    checkpointEvery: 20,
    gradientNormsEvery: 25,
  };
}

/**
 * Whether photos without annotations teach anything under this config: a method reads them (with
 * the teacher's boxes where it needs boxes), or the detection loss takes their pseudo boxes.
 */
export function photosTeach(config: ExperimentConfig): boolean {
  return config.methods.length > 0 || !!config.data.pseudoDetection;
}

/** The default experiment with the repair recipe (./repair-recipe.ts) for a derived student. */
export function repairRecipe(): ExperimentConfig {
  return withRepairRecipe(defaultExperiment());
}

/** Checks an untrusted experiment JSON, listing every problem at once. */
export function parseExperiment(value: unknown, origin = 'experiment'): ExperimentConfig {
  const problems: string[] = [];
  const v = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
  const base = defaultExperiment();
  if (v.configVersion !== 1) problems.push('"configVersion" must be 1');
  for (const key of ['teacher', 'student'] as const) if (typeof v[key] !== 'string' || !v[key]) problems.push(`"${key}" must name a model manifest`);
  const data = (v.data ?? {}) as Record<string, unknown>;
  if (typeof data.trainSplit !== 'string' || typeof data.valSplit !== 'string') problems.push('"data" must give "trainSplit" and "valSplit"');
  if (data.pseudoThreshold !== undefined && !(typeof data.pseudoThreshold === 'number' && data.pseudoThreshold > 0 && data.pseudoThreshold < 1)) problems.push('"data.pseudoThreshold" must lie in (0, 1)');
  if (data.annotatedPerBatch !== undefined && !(Number.isInteger(data.annotatedPerBatch) && (data.annotatedPerBatch as number) >= 0)) problems.push('"data.annotatedPerBatch" must be an integer >= 0');
  if (typeof v.detectionWeight !== 'number' || !(v.detectionWeight >= 0)) problems.push('"detectionWeight" must be a number >= 0');
  const known = new Set<string>(METHODS.map((m) => m.id));
  const methods = Array.isArray(v.methods) ? (v.methods as Record<string, unknown>[]) : [];
  if (!Array.isArray(v.methods)) problems.push('"methods" must be a list');
  for (const m of methods) {
    if (!known.has(String(m.id))) problems.push(`unknown method "${String(m.id)}" (known: ${[...known].join(', ')})`);
    if (m.scale !== undefined && typeof m.scale !== 'number') problems.push(`method "${String(m.id)}": "scale" must be a number`);
  }
  const schedule = { ...base.schedule, ...((v.schedule ?? {}) as Partial<ScheduleConfig>) };
  const positiveInt = (k: keyof ScheduleConfig) => {
    if (!(Number.isInteger(schedule[k]) && (schedule[k] as number) > 0)) problems.push(`"schedule.${k}" must be a positive integer`);
  };
  positiveInt('epochs');
  if (schedule.steps !== undefined && !(Number.isInteger(schedule.steps) && schedule.steps >= 0)) problems.push('"schedule.steps" must be an integer >= 0');
  positiveInt('batchSize');
  if (typeof data.annotatedPerBatch === 'number' && data.annotatedPerBatch >= schedule.batchSize) problems.push(`"data.annotatedPerBatch" (${data.annotatedPerBatch}) must be below the batch size (${schedule.batchSize}), to leave room for photos`);
  positiveInt('inputSize');
  if (schedule.inputSize % 32 !== 0) problems.push('"schedule.inputSize" must be a multiple of 32');
  if (!(schedule.lr > 0)) problems.push('"schedule.lr" must be > 0');
  if (schedule.optimizer !== 'sgd' && schedule.optimizer !== 'adam') problems.push('"schedule.optimizer" must be "sgd" or "adam"');
  if (schedule.ema !== undefined && !(typeof schedule.ema === 'number' && schedule.ema >= 0 && schedule.ema < 1)) problems.push('"schedule.ema" must lie in [0, 1)');
  if (!(schedule.flipProbability >= 0 && schedule.flipProbability <= 1)) problems.push('"schedule.flipProbability" must lie in [0, 1]');
  if (schedule.cropScale !== undefined && !(typeof schedule.cropScale === 'number' && schedule.cropScale > 0 && schedule.cropScale <= 1)) problems.push('"schedule.cropScale" must lie in (0, 1]');
  if (v.trainOnly !== undefined) {
    if (typeof v.trainOnly !== 'string' || !v.trainOnly) problems.push('"trainOnly" must be a regular expression over weight names');
    else {
      try {
        new RegExp(v.trainOnly);
      } catch (error) {
        problems.push(`"trainOnly" is not a regular expression: ${(error as Error).message}`);
      }
    }
  }
  if (v.prune !== undefined) {
    const prune = (v.prune ?? {}) as Record<string, unknown>;
    if (!(Number.isInteger(prune.fadeSteps) && (prune.fadeSteps as number) >= 1)) problems.push('"prune.fadeSteps" must be a positive integer');
    const keep = prune.keep;
    const valid = (list: unknown) => Array.isArray(list) && list.length > 0 && list.every((c, j) => Number.isInteger(c) && c >= 0 && (j === 0 || c > list[j - 1]));
    if (typeof keep !== 'object' || keep === null || Object.keys(keep).length === 0) problems.push('"prune.keep" must map each pruned convolution to the channels it keeps');
    else for (const [conv, list] of Object.entries(keep)) if (!valid(list)) problems.push(`"prune.keep" of "${conv}" must be a non-empty list of ascending channel indices`);
  }
  if (v.gradientNormsEvery !== undefined && !(Number.isInteger(v.gradientNormsEvery) && (v.gradientNormsEvery as number) >= 0)) problems.push('"gradientNormsEvery" must be an integer >= 0');
  if (problems.length) throw new Error(`Invalid experiment config (${origin}):\n- ${problems.join('\n- ')}`);
  return { ...(v as unknown as ExperimentConfig), schedule, checkpointEvery: typeof v.checkpointEvery === 'number' ? v.checkpointEvery : base.checkpointEvery };
}
