/**
 * The training loop, shared by the lab's worker and the command line: epochs of batches, the
 * learning-rate schedule, progress events (typed), checkpoints every few steps and when stopped,
 * pause, stop, and a clear stop when the loss keeps coming out non-finite.
 */
import type { PanelMap } from '../distill/types';
import { iterateBatches, type AnnotatedImage, type ImageLoader } from '../data/pipeline';
import { captureCheckpoint, type Checkpoint } from './checkpoint';
import type { ExperimentConfig } from './config';
import type { Optimizer } from './optimizer';
import { learningRateAt } from './schedule';
import type { DistillSession } from './session';
import { distillStep } from './step';
import { tapNames } from './detector-taps';
import { DEFAULT_TEACHER_CACHE_MIB, TeacherCache, teacherCacheApplies, type TeacherCacheStats } from './teacher-cache';
import { stepsPerEpoch } from './epoch';

export { stepsPerEpoch };

export type TrainEvent =
  | { type: 'started'; step: number; totalSteps: number; stepsPerEpoch: number }
  | {
      type: 'step';
      step: number;
      epoch: number;
      totalSteps: number;
      stepsPerEpoch: number;
      lr: number;
      loss: number;
      terms: Record<string, number>;
      numPositives: number;
      /** Boxes the teacher gave this step's photos without annotations (pseudo ground truth). */
      pseudoBoxes: number;
      gradNorm: number;
      /** Per part, the norm of the gradient its loss alone sends to the student (steps where it was measured). */
      gradientNorms?: Record<string, number>;
      applied: boolean;
      nonFiniteTerms: string[];
      msPerStep: number;
      imagesPerSecond: number;
      etaSeconds: number;
      imageIds: string[];
      /** The teacher's taps kept between epochs (runs with a teacher and no random crops). */
      teacherCache?: TeacherCacheStats;
    }
  | { type: 'maps'; step: number; imageId: string; maps: PanelMap[] }
  | { type: 'checkpoint'; step: number; reason: 'interval' | 'stopped' | 'finished' }
  | { type: 'paused'; step: number }
  | { type: 'resumed'; step: number }
  | { type: 'finished'; step: number; stopped: boolean };

export interface TrainOptions {
  session: DistillSession;
  optimizer: Optimizer;
  config: ExperimentConfig;
  images: readonly AnnotatedImage[];
  loadImage: ImageLoader;
  /** Steps already done (resuming from a checkpoint). */
  startStep?: number;
  signal?: AbortSignal;
  /** Awaited before each step; resolves when the run may go on (pause support). */
  gate?: () => Promise<void>;
  /** Ask for panel maps every this many steps (0: never). */
  /** Measure each loss part's gradient norm at step 0 and every this many steps (0 or absent: never). */
  gradientNormsEvery?: number;
  mapsEvery?: number;
  onEvent?: (event: TrainEvent) => void;
  saveCheckpoint?: (checkpoint: Checkpoint) => Promise<void>;
  /** Called after every step with the number of steps done (e.g. to fade out pruned channels). */
  afterStep?: (step: number) => void;
  /** Consecutive non-finite steps after which the run stops with an error. Default 3. */
  maxNonFiniteSteps?: number;
  /**
   * Memory for the teacher's taps of images seen before, in MiB (default
   * DEFAULT_TEACHER_CACHE_MIB; 0: the teacher runs on every image at every step). Not used with
   * random crops, whose windows never repeat.
   */
  teacherCacheMiB?: number;
}

export class NonFiniteLossError extends Error {
  constructor(
    readonly step: number,
    readonly terms: string[],
  ) {
    super(
      `The loss was not finite for several steps in a row (step ${step}; terms: ${terms.join(', ')}). ` +
        'The weights were not updated on those steps. Lower the learning rate or the weight of the named terms, then resume from the last checkpoint.',
    );
    this.name = 'NonFiniteLossError';
  }
}

export async function train(o: TrainOptions): Promise<{ step: number; stopped: boolean }> {
  const { session, optimizer, config, images, loadImage, signal } = o;
  const s = config.schedule;
  if (images.length < s.batchSize) throw new Error(`The split has ${images.length} images, fewer than one batch of ${s.batchSize}.`);
  if (s.batchSize > 1) {
    // A graph that folds the batch into a reshape runs at batch 1 only: say so before the first step.
    for (const model of [session.student, session.teacher]) {
      const bound = model?.graph.batchBoundNodes(tapNames(model.manifest)) ?? [];
      if (bound.length) {
        const b = bound[0]!;
        throw new Error(`${model!.manifest.name} runs at batch 1 only: its Reshape node "${b.node}" bakes the batch into its target [${b.target.join(',')}] (input [${b.input.join(',')}])${bound.length > 1 ? ` (and ${bound.length - 1} more)` : ''}. Use batch size 1.`);
      }
    }
  }
  const annotatedPerBatch = config.data.annotatedPerBatch ?? 0;
  const perEpoch = stepsPerEpoch(images.length, s.batchSize, { photos: images.filter((i) => i.unlabeled).length, annotatedPerBatch });
  // A fixed step count (schedule.steps) overrides the epochs: runs over different image sets compare at equal steps.
  const totalSteps = s.steps && s.steps > 0 ? s.steps : perEpoch * s.epochs;
  const epochs = Math.ceil(totalSteps / perEpoch);
  const schedule = { lr: s.lr, totalSteps, warmupSteps: Math.min(s.warmupSteps, totalSteps), warmupRatio: 0.1, minRatio: 0.05 };
  let step = o.startStep ?? 0;
  let badSteps = 0;
  const emit = o.onEvent ?? (() => undefined);
  const checkpoint = async (reason: 'interval' | 'stopped' | 'finished') => {
    if (!o.saveCheckpoint) return;
    await o.saveCheckpoint(await captureCheckpoint(session, optimizer, step, config));
    emit({ type: 'checkpoint', step, reason });
  };
  emit({ type: 'started', step, totalSteps, stepsPerEpoch: perEpoch });
  const times: number[] = [];
  const cacheMiB = o.teacherCacheMiB ?? DEFAULT_TEACHER_CACHE_MIB;
  // A teacher that is the student's own graph changes as it trains: its outputs cannot be kept.
  const frozenTeacher = !!session.teacher && session.teacher.graph !== session.student.graph;
  const teacherCache = frozenTeacher && cacheMiB > 0 && teacherCacheApplies(s) ? new TeacherCache(cacheMiB * 2 ** 20, session.teacherFeatures) : undefined;
  try {
    for (let epoch = Math.floor(step / perEpoch); epoch < epochs && step < totalSteps; epoch++) {
      let skip = step - epoch * perEpoch;
      const batches = iterateBatches(images, loadImage, session.student.manifest, {
        batchSize: s.batchSize,
        seed: s.seed,
        epoch,
        flipProbability: s.flipProbability,
        ...(s.cropScale !== undefined ? { cropScale: s.cropScale } : {}),
        inputSize: s.inputSize,
        annotatedPerBatch,
        dropLast: true,
        signal,
      });
      try {
        for await (const batch of batches) {
          try {
            if (skip > 0) {
              skip--;
              continue;
            }
            if (o.gate) await o.gate();
            if (signal?.aborted || step >= totalSteps) break;
            const lr = learningRateAt(step, schedule);
            const withMaps = !!o.mapsEvery && step % o.mapsEvery === 0;
            const t0 = performance.now();
            // Gradient norms per part at the first step and every `gradientNormsEvery` after.
            const every = o.gradientNormsEvery ?? config.gradientNormsEvery ?? 0;
            const measureGradients = every > 0 && step % every === 0;
            const r = await distillStep(session, optimizer, batch, { lr, clipNorm: s.clipNorm, withMaps, pseudoThreshold: config.data.pseudoThreshold, pseudoDetection: config.data.pseudoDetection, measureGradients, teacherCache });
            const ms = performance.now() - t0;
            step++;
            o.afterStep?.(step);
            times.push(ms);
            if (times.length > 20) times.shift();
            const mean = times.reduce((a, b) => a + b, 0) / times.length;
            emit({
              type: 'step',
              step,
              epoch,
              totalSteps,
              stepsPerEpoch: perEpoch,
              lr,
              loss: r.loss,
              terms: r.terms,
              numPositives: r.numPositives,
              pseudoBoxes: r.pseudoBoxes,
              gradNorm: r.gradNorm,
              ...(r.gradientNorms ? { gradientNorms: r.gradientNorms } : {}),
              applied: r.applied,
              nonFiniteTerms: r.nonFiniteTerms,
              msPerStep: ms,
              imagesPerSecond: (s.batchSize * 1000) / mean,
              etaSeconds: ((totalSteps - step) * mean) / 1000,
              imageIds: batch.ids,
              ...(teacherCache ? { teacherCache: teacherCache.stats() } : {}),
            });
            if (r.maps) emit({ type: 'maps', step, imageId: batch.ids[0]!, maps: r.maps });
            badSteps = r.applied ? 0 : badSteps + 1;
            if (badSteps >= (o.maxNonFiniteSteps ?? 3)) throw new NonFiniteLossError(step, r.nonFiniteTerms);
            if (config.checkpointEvery > 0 && step % config.checkpointEvery === 0) await checkpoint('interval');
          } finally {
            batch.input.dispose();
          }
        }
      } catch (error) {
        // Stopping aborts the batch iterator mid-load: that is a stop, not a failure.
        if (!signal?.aborted) throw error;
      }
      if (signal?.aborted) break;
    }
  } finally {
    teacherCache?.dispose();
  }
  const stopped = !!signal?.aborted && step < totalSteps;
  await checkpoint(stopped ? 'stopped' : 'finished');
  emit({ type: 'finished', step, stopped });
  return { step, stopped };
}
