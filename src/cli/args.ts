/**
 * Command-line arguments of `npm run distill`, parsed with node:util's parseArgs and checked:
 * a bad argument is a UsageError whose message says what is wrong and shows the usage.
 */
import { readFileSync } from 'node:fs';
import { readPlanFile } from './plan-file';
import { parseArgs } from 'node:util';
import { METHODS, type MethodId } from '../distill/registry';
import { defaultExperiment, parseExperiment, type ExperimentConfig, type MethodConfig } from '../train/config';
import { parseThreads } from './wasm-threads';
import { DEFAULT_TEACHER_CACHE_MIB } from '../train/teacher-cache';

export const USAGE = `Usage: npm run distill -- [options]

Distills a student detector from a teacher on a PASCAL VOC folder, headless, on the CPU (wasm).

  --data <dir>            VOC folder (a VOCdevkit, a year folder, or above them)   (required)
  --config <file.json>    an experiment config saved from the lab (options below override it)
  --teacher <manifest>    teacher manifest, a path or a name in models/   [nanodet.manifest.json]
  --student <manifest>    student manifest                                [nanodet-student.manifest.json]
  --train-split <name>    split to train on                               [train]
  --val-split <name>      split to evaluate on                            [val]
  --unlabeled <folder>    photos without annotations to train on too; their boxes are the
                          teacher's detections (dataset classes, score >= --pseudo-threshold)
  --max-unlabeled <n>     use the first n of them                         [all]
  --pseudo-threshold <x>  teacher score for a pseudo box                  [0.4]
  --pseudo-detection      also train the detection loss on those boxes (by default they feed
                          only the distillation methods that need boxes)
                          (--train-split none: train on the unlabelled photos alone)
  --annotated-per-batch <n>  with --unlabeled and a train split: n annotated images in every
                          batch, the rest photos (an epoch is one pass over the photos) [0: drawn alike]
  --methods <list>        comma-separated: ${METHODS.map((m) => m.id).join(', ')}
                          (none: plain fine-tuning with the detection loss)
  --scale <id=x,...>      extra weight per method, e.g. fgd=2,kd=0.5
  --detection-weight <x>  weight of the student's own GFL loss            [1]
  --epochs <n>            [12]     --batch-size <n>  [4]     --input-size <n>  [416]
  --steps <n>             train exactly n steps (overrides --epochs)
  --gradient-norms-every <n>  log each loss part's gradient norm at step 0 and every n steps
                          (about one extra step per part each time; 0: never)   [25]
  --eval-every <n>        evaluate the student on --val-split every n steps while training
                          (kept in run.json as the mAP curve; 0: only before and after)   [0]
  --lr <x>                [1e-4]   --optimizer adam|sgd  [adam]   --seed <n>  [1]
  --weight-decay <x>      decoupled (adam) or L2 (sgd) weight decay        [0.05; 1e-4 with sgd]
  --ema <decay>           evaluate and export a moving average of the weights (e.g. 0.99)
                          rather than the last step's                     [off]
  --crop-scale <s>        random crops: each training image cut to a window of sides s..1
                          of its own (objects whose centre falls outside left out)  [1: off]
  --train-only <regex>    train only the student weights whose names match; the rest stay
                          as they are (e.g. 'split_(29|3[0-3])$': the head's last layers)
  --prune-plan <file>     prune while training: the channels a derivation (its derivation.json)
                          cut fade to zero, then are cut; the student is the full-width one
  --fade-steps <n>        steps over which they fade               [half of --steps; needs --steps]
  --out <dir>             output folder, new or empty                     [runs/<timestamp>]
  --overwrite             write into a non-empty --out (replaces its run's files)
  --resume <file.dlc>     continue from a checkpoint (its config is used)
  --eval-teacher          also evaluate the teacher
  --float16               store the distilled weights as float16
  --backend <name>        wasm (CPU), or webgpu (a GPU through Dawn, the npm webgpu package)  [wasm]
  --threads <n|all>       wasm kernel threads, 1 to 8                     [all: one per core]
  --teacher-cache <MiB>   memory for the teacher's outputs of images seen before (same flip):
                          those steps skip the teacher's forward; not used with --crop-scale
                          below 1; 0: off                                  [${DEFAULT_TEACHER_CACHE_MIB}]
  --list-methods          list the methods and exit
  -h, --help              this help

Writes <out>/student/{model.json,model.bin,manifest.json}, <out>/log.jsonl (every loss term per
step), <out>/eval.json (VOC mAP per class, before and after), <out>/checkpoint.dlc.
Ctrl-C stops cleanly after the current step and saves a checkpoint that --resume continues.
Every argument (data folder, splits, manifests, --out) is checked before anything is written.`;

/** `--threads`, as a usage error when it is not a count. */
export function threadsOption(value: string | undefined, usage = USAGE): number {
  try {
    return parseThreads(value);
  } catch (error) {
    throw new UsageError((error as Error).message, usage);
  }
}

export class UsageError extends Error {
  constructor(message: string, usage = USAGE) {
    super(`${message}\n\n${usage}`);
    this.name = 'UsageError';
  }
}

export interface CliOptions {
  config: ExperimentConfig;
  dataDir: string;
  outDir: string;
  resume?: string;
  overwrite: boolean;
  evalTeacher: boolean;
  /** Evaluate every this many steps while training (0: only before and after). */
  evalEvery?: number;
  float16: boolean;
  /** The tfjs backend to train on. */
  backend: 'wasm' | 'webgpu';
  /** wasm kernel threads. */
  threads: number;
  /** Memory for the teacher's taps of images seen before, in MiB (0: off). */
  teacherCacheMiB: number;
  help: boolean;
  listMethods: boolean;
}

function number(value: string | undefined, name: string, check: (n: number) => boolean, what: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || !check(n)) throw new UsageError(`--${name} must be ${what}, got "${value}".`);
  return n;
}

export function parseCli(argv: string[], now = new Date()): CliOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: false,
      options: {
        data: { type: 'string' },
        config: { type: 'string' },
        teacher: { type: 'string' },
        student: { type: 'string' },
        'train-split': { type: 'string' },
        'val-split': { type: 'string' },
        unlabeled: { type: 'string' },
        'max-unlabeled': { type: 'string' },
        'pseudo-threshold': { type: 'string' },
        'pseudo-detection': { type: 'boolean' },
        'annotated-per-batch': { type: 'string' },
        methods: { type: 'string' },
        scale: { type: 'string' },
        'detection-weight': { type: 'string' },
        epochs: { type: 'string' },
        steps: { type: 'string' },
        'batch-size': { type: 'string' },
        'input-size': { type: 'string' },
        lr: { type: 'string' },
        'gradient-norms-every': { type: 'string' },
        'eval-every': { type: 'string' },
        'prune-plan': { type: 'string' },
        'fade-steps': { type: 'string' },
        optimizer: { type: 'string' },
        'weight-decay': { type: 'string' },
        'train-only': { type: 'string' },
        ema: { type: 'string' },
        'crop-scale': { type: 'string' },
        seed: { type: 'string' },
        out: { type: 'string' },
        resume: { type: 'string' },
        overwrite: { type: 'boolean', default: false },
        'eval-teacher': { type: 'boolean', default: false },
        float16: { type: 'boolean', default: false },
        backend: { type: 'string', default: 'wasm' },
        threads: { type: 'string' },
        'teacher-cache': { type: 'string' },
        'list-methods': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const v = parsed.values;
  const base: ExperimentConfig = v.config ? parseExperiment(readJson(v.config), v.config) : defaultExperiment();
  if (v.help || v['list-methods']) return { config: base, dataDir: '', outDir: '', overwrite: false, evalTeacher: false, float16: false, backend: 'wasm', threads: 1, teacherCacheMiB: DEFAULT_TEACHER_CACHE_MIB, help: !!v.help, listMethods: !!v['list-methods'] };
  if (v.backend !== 'wasm' && v.backend !== 'webgpu') throw new UsageError(`--backend is wasm or webgpu, not "${v.backend}".`);
  const threads = threadsOption(v.threads);
  if (!v.data && !v.resume && !base.data.source) throw new UsageError('--data is required (a folder with VOCdevkit/VOC20xx, or a year folder).');
  // A resumed run is the checkpoint's own (its schedule decides the learning rate at every step):
  // a length given beside it would be dropped without a word.
  if (v.resume && (v.steps !== undefined || v.epochs !== undefined)) {
    throw new UsageError('--resume continues the checkpoint\'s run to its own length (its config is used); --steps and --epochs cannot change it. To train longer, start a new run with --steps.');
  }

  const known = new Set<string>(METHODS.map((m) => m.id));
  const methods: MethodConfig[] = v.methods !== undefined
    ? v.methods.split(',').map((s) => s.trim()).filter(Boolean).map((id) => {
        if (!known.has(id)) throw new UsageError(`Unknown method "${id}". Known: ${[...known].join(', ')}.`);
        return { id: id as MethodId };
      })
    : base.methods;
  for (const pair of (v.scale ?? '').split(',').filter(Boolean)) {
    const [id, x] = pair.split('=');
    const m = methods.find((mm) => mm.id === id);
    if (!m) throw new UsageError(`--scale names "${id}", which is not among the chosen methods.`);
    m.scale = number(x, 'scale', (n) => n >= 0, 'id=<number >= 0>');
  }
  const s = base.schedule;
  const optimizer = v.optimizer ?? s.optimizer;
  if (optimizer !== 'adam' && optimizer !== 'sgd') throw new UsageError(`--optimizer must be adam or sgd, got "${optimizer}".`);
  const config: ExperimentConfig = {
    ...base,
    teacher: v.teacher ?? base.teacher,
    student: v.student ?? base.student,
    data: {
      ...base.data,
      source: v.data ?? base.data.source,
      trainSplit: v['train-split'] ?? base.data.trainSplit,
      valSplit: v['val-split'] ?? base.data.valSplit,
      unlabeled: v.unlabeled ?? base.data.unlabeled,
      maxUnlabeled: number(v['max-unlabeled'], 'max-unlabeled', (n) => Number.isInteger(n) && n > 0, 'a positive integer') ?? base.data.maxUnlabeled,
      pseudoDetection: v['pseudo-detection'] ?? base.data.pseudoDetection,
      annotatedPerBatch: number(v['annotated-per-batch'], 'annotated-per-batch', (n) => Number.isInteger(n) && n >= 0, 'an integer >= 0') ?? base.data.annotatedPerBatch,
      pseudoThreshold: number(v['pseudo-threshold'], 'pseudo-threshold', (n) => n > 0 && n < 1, 'a score in (0, 1)') ?? base.data.pseudoThreshold,
    },
    methods,
    trainOnly: v['train-only'] ?? base.trainOnly,
    gradientNormsEvery: number(v['gradient-norms-every'], 'gradient-norms-every', (n) => Number.isInteger(n) && n >= 0, 'an integer >= 0') ?? base.gradientNormsEvery,
    detectionWeight: number(v['detection-weight'], 'detection-weight', (n) => n >= 0, 'a number >= 0') ?? base.detectionWeight,
    schedule: {
      ...s,
      epochs: number(v.epochs, 'epochs', (n) => Number.isInteger(n) && n > 0, 'a positive integer') ?? s.epochs,
      steps: number(v.steps, 'steps', (n) => Number.isInteger(n) && n > 0, 'a positive integer') ?? s.steps,
      batchSize: number(v['batch-size'], 'batch-size', (n) => Number.isInteger(n) && n > 0, 'a positive integer') ?? s.batchSize,
      inputSize: number(v['input-size'], 'input-size', (n) => Number.isInteger(n) && n >= 32 && n % 32 === 0, 'a multiple of 32') ?? s.inputSize,
      lr: number(v.lr, 'lr', (n) => n > 0, 'a positive number') ?? s.lr,
      optimizer,
      // An L2 decay of 0.05 (AdamW's decoupled default) would outweigh SGD's gradients.
      weightDecay: number(v['weight-decay'], 'weight-decay', (n) => n >= 0, 'a number >= 0') ?? (optimizer === 'sgd' && optimizer !== s.optimizer ? 1e-4 : s.weightDecay),
      seed: number(v.seed, 'seed', Number.isInteger, 'an integer') ?? s.seed,
      ema: number(v.ema, 'ema', (n) => n >= 0 && n < 1, 'a decay in [0, 1)') ?? s.ema,
      cropScale: number(v['crop-scale'], 'crop-scale', (n) => n > 0 && n <= 1, 'a fraction in (0, 1]') ?? s.cropScale,
    },
  };
  if (!config.methods.length && !(config.detectionWeight > 0)) throw new UsageError('Nothing to train: no method chosen and --detection-weight 0.');
  if (v['prune-plan']) config.prune = prunePlan(v['prune-plan'], number(v['fade-steps'], 'fade-steps', (n) => Number.isInteger(n) && n >= 1, 'a positive integer'), config.schedule.steps);
  else if (v['fade-steps'] !== undefined) throw new UsageError('--fade-steps needs --prune-plan.');
  const stamp = now.toISOString().replace(/[:.]/g, '-').slice(0, 19);
  return {
    config: parseExperiment(config, 'command line'),
    dataDir: v.data ?? config.data.source ?? '',
    outDir: v.out ?? `runs/${stamp}`,
    resume: v.resume,
    overwrite: !!v.overwrite,
    evalTeacher: !!v['eval-teacher'],
    evalEvery: number(v['eval-every'], 'eval-every', (n) => Number.isInteger(n) && n >= 0, 'an integer >= 0') ?? 0,
    float16: !!v.float16,
    backend: v.backend,
    threads,
    teacherCacheMiB: number(v['teacher-cache'], 'teacher-cache', (n) => n >= 0, 'a size in MiB >= 0') ?? DEFAULT_TEACHER_CACHE_MIB,
    help: false,
    listMethods: false,
  };
}

/** `--prune-plan`: the channel plan of a derivation record (derive-student's derivation.json). */
function prunePlan(path: string, fadeSteps: number | undefined, steps: number | undefined): NonNullable<ExperimentConfig['prune']> {
  let plan;
  try {
    plan = readPlanFile(path);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const fade = fadeSteps ?? (steps ? Math.max(1, Math.round(steps / 2)) : undefined);
  if (!fade) throw new UsageError('--prune-plan needs --steps (the fade takes half of them) or --fade-steps.');
  return { keep: Object.fromEntries(plan), fadeSteps: fade };
}

function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new UsageError(`Cannot read the config ${path}: ${(error as Error).message}`);
  }
}
