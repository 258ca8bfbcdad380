/**
 * One training step of a distillation session: the teacher runs outside the gradient (it is a
 * constant), the student runs with taps, the detection loss and every method's loss are summed,
 * gradients reach the student and the methods' connectors only, and the optimizer updates them.
 * A step whose loss is not finite updates nothing and says which terms went wrong.
 */
import * as tf from '@tensorflow/tfjs';
import { assignAtss } from '../detect/atss';
import { gflLoss } from '../detect/gfl-loss';
import type { Assignment } from '../detect/assignment';
import type { AnchorGrid } from '../detect/anchors';
import { runMethods, type DistillInputs } from '../distill/registry';
import { keepTerms, type PanelMap } from '../distill/types';
import type { TrainingBatch } from '../data/pipeline';
import { disposeTaps, readDetector, type DetectorTaps } from './detector-taps';
import { clipByNorm, gradientVector, type Optimizer } from './optimizer';
import { DEFAULT_PSEUDO_THRESHOLD, pseudoGroundTruth } from './pseudo-labels';
import type { DistillSession } from './session';
import { teacherCacheKeys, type TeacherCache } from './teacher-cache';
import { recordOnlyWhatGradientsReach } from '../graph/ops/tape';

// A step's methods run many ops on the teacher's side and on the targets, which no gradient
// reaches: recording them would cost a clone of every tensor their gradients would read.
recordOnlyWhatGradientsReach();

export interface StepOptions {
  lr: number;
  /** Global gradient-norm clip; 0 disables. */
  clipNorm: number;
  /** Also return every method's panel maps (costs a read-back). */
  withMaps?: boolean;
  /** Score above which the teacher's detections become boxes of photos without annotations. */
  pseudoThreshold?: number;
  /** Train the detection loss on the pseudo boxes of unlabelled photos too (default: annotated images only). */
  pseudoDetection?: boolean;
  /** Also measure each part's gradient norm on the student (`gradientNorms`; costs a forward and backward per part). */
  measureGradients?: boolean;
  /**
   * The teacher's taps of images seen before (same flip, same size) come from here, and the
   * teacher runs on the others only. Only for batches without random crops.
   */
  teacherCache?: TeacherCache;
}

export interface StepResult {
  /** Total loss and every named term, as numbers. */
  loss: number;
  terms: Record<string, number>;
  numPositives: number;
  gradNorm: number;
  /** False when the loss was not finite: the weights were left as they were. */
  applied: boolean;
  nonFiniteTerms: string[];
  maps?: PanelMap[];
  /** Boxes taken from the teacher for photos without annotations in this batch (0 when none). */
  pseudoBoxes: number;
  /**
   * When measured: per part ('detection' and each method's label), the L2 norm of the gradient
   * its weighted loss alone sends to the student's weights (connectors excluded), before clipping.
   */
  gradientNorms?: Record<string, number>;
}

export function inputSizeOf(batch: TrainingBatch, layout: 'NCHW' | 'NHWC'): number {
  return layout === 'NCHW' ? batch.input.shape[2] : batch.input.shape[1];
}

/** Indices of the batch images the detection loss trains on: annotated ones, and photos too when asked. */
export function detectionImages(batch: TrainingBatch, pseudoDetection: boolean): number[] {
  return batch.gts.map((_, i) => i).filter((i) => pseudoDetection || !batch.unlabeled?.[i]);
}

/**
 * The GFL loss of the images `picked` (all of them: the plain loss). Images are sliced out and
 * joined along the batch axis: gather's gradient needs a kernel wasm lacks.
 */
export function detectionLoss(raw: tf.Tensor4D[], assignments: Assignment[], picked: number[], grid: AnchorGrid, regMax: number) {
  if (picked.length === assignments.length) return gflLoss({ outputs: raw, assignments, grid, regMax });
  const outputs = raw.map((r) => tf.concat(picked.map((i) => tf.slice(r, [i, 0, 0, 0], [1, -1, -1, -1]))) as tf.Tensor4D);
  return gflLoss({ outputs, assignments: picked.map((i) => assignments[i]!), grid, regMax });
}

/** The tensors of one forward of the session, for the step and for inspection. */
export function distillInputs(session: DistillSession, tapsT: DetectorTaps | undefined, tapsS: DetectorTaps, assignments: Assignment[]): DistillInputs {
  return {
    stageT: tapsT?.backbone,
    stageS: tapsS.backbone,
    neckT: tapsT?.neck,
    neckS: tapsS.neck,
    headT: tapsT?.head,
    headS: tapsS.head,
    clsT: tapsT?.cls,
    clsS: tapsS.cls,
    boxT: tapsT?.box,
    boxS: tapsS.box,
    assignments,
  };
}

export function assignBatch(session: DistillSession, batch: TrainingBatch): Assignment[] {
  const grid = session.grid(inputSizeOf(batch, session.student.manifest.input.layout));
  return batch.gts.map((g) => assignAtss(grid, g));
}

/**
 * The batch with pseudo boxes for its photos without annotations: the teacher's detections (in
 * the student's label space) above the threshold. Labelled images keep their annotations.
 */
export async function withPseudoLabels(session: DistillSession, batch: TrainingBatch, tapsT: DetectorTaps | undefined, threshold: number): Promise<{ batch: TrainingBatch; pseudoBoxes: number }> {
  const wanted = batch.unlabeled ?? [];
  if (!wanted.some(Boolean)) return { batch, pseudoBoxes: 0 };
  if (!tapsT) throw new Error('Photos without annotations need a teacher: its detections are their boxes. Load a teacher, or train on annotated images only.');
  const { head, classes } = session.student.manifest;
  if (tapsT.cls[0]!.shape[3] !== classes.length) {
    throw new Error(`The teacher's classes do not cover the student's ${classes.length}: photos without annotations cannot take their boxes from it.`);
  }
  const pseudo = await pseudoGroundTruth(tapsT.raw, wanted, { strides: head.strides, regMax: head.regMax, inputSize: inputSizeOf(batch, session.student.manifest.input.layout), scoreThreshold: threshold });
  let pseudoBoxes = 0;
  const gts = batch.gts.map((g, i) => {
    const p = pseudo[i];
    if (!p) return g;
    pseudoBoxes += p.length;
    return p;
  });
  return { batch: { ...batch, gts }, pseudoBoxes };
}

/**
 * What each part of the loss pulls with: the detection loss and each method, one at a time, each
 * the L2 norm of the gradient of its weighted loss on the student's own weights. The parts' sum
 * is the step's gradient (before clipping); their norms say whether a term is negligible or
 * dominant. One forward and backward per part.
 */
export async function measureGradientNorms(session: DistillSession, tapsT: DetectorTaps | undefined, batch: TrainingBatch, assignments: Assignment[], pseudoDetection = false): Promise<Record<string, number>> {
  const { student } = session;
  const variables = student.graph.trainableVariables();
  const grid = assignments[0]!.grid;
  const parts: { label: string; loss: (tapsS: DetectorTaps) => tf.Scalar }[] = [];
  const detected = detectionImages(batch, pseudoDetection);
  if (session.detectionWeight > 0 && detected.length > 0) {
    parts.push({
      label: 'detection',
      loss: (tapsS) => tf.mul(detectionLoss(tapsS.raw, assignments, detected, grid, student.manifest.head.regMax).loss, session.detectionWeight) as tf.Scalar,
    });
  }
  for (const m of session.methods) {
    parts.push({ label: m.label, loss: (tapsS) => tf.mul(m.run(distillInputs(session, tapsT, tapsS, assignments)).loss, m.scale) as tf.Scalar });
  }
  const norms: Record<string, number> = {};
  for (const part of parts) {
    const { value, grads } = tf.variableGrads(() => part.loss(readDetector(student.graph, student.manifest, batch.input, session.studentRead)), variables);
    const norm = tf.tidy(() => tf.sqrt(tf.addN(Object.values(grads).map((g) => tf.sum(tf.square(g))))));
    norms[part.label] = (await norm.data())[0]!;
    tf.dispose([value, norm, ...Object.values(grads)]);
  }
  return norms;
}

/** The teacher's taps of a batch: through the cache when there is one. */
export function readTeacher(session: DistillSession, batch: TrainingBatch, cache?: TeacherCache): DetectorTaps {
  const teacher = session.teacher!;
  const run = (input: tf.Tensor4D) => readDetector(teacher.graph, teacher.manifest, input, session.teacherRead);
  if (!cache) return run(batch.input);
  return cache.read(run, batch.input, teacherCacheKeys(batch, inputSizeOf(batch, session.student.manifest.input.layout)));
}

export async function distillStep(session: DistillSession, optimizer: Optimizer, given: TrainingBatch, options: StepOptions): Promise<StepResult> {
  const { student, teacher } = session;
  const tapsT = teacher ? readTeacher(session, given, options.teacherCache) : undefined;
  let labelled: { batch: TrainingBatch; pseudoBoxes: number };
  try {
    labelled = await withPseudoLabels(session, given, tapsT, options.pseudoThreshold ?? DEFAULT_PSEUDO_THRESHOLD);
  } catch (error) {
    if (tapsT) disposeTaps(tapsT);
    throw error;
  }
  const { batch, pseudoBoxes } = labelled;
  const assignments = assignBatch(session, batch);
  const grid = assignments[0]!.grid;
  let terms: Record<string, tf.Scalar> = {};
  let maps: PanelMap[] | undefined;
  let numPositives = 0;
  const variables = session.trainableVariables();
  try {
    const { value, grads } = tf.variableGrads(() => {
      const tapsS = readDetector(student.graph, student.manifest, batch.input, session.studentRead);
      let detection: { loss: tf.Scalar; terms: Record<string, tf.Scalar> } | undefined;
      const detected = detectionImages(batch, options.pseudoDetection ?? false);
      if (session.detectionWeight > 0 && detected.length > 0) {
        const d = detectionLoss(tapsS.raw, assignments, detected, grid, student.manifest.head.regMax);
        numPositives = d.numPositives;
        detection = { loss: tf.mul(d.loss, session.detectionWeight) as tf.Scalar, terms: d.terms };
      }
      const result = runMethods(session.methods, distillInputs(session, tapsT, tapsS, assignments), { detection, withMaps: options.withMaps });
      keepTerms(result);
      terms = result.terms;
      maps = result.maps;
      return result.loss;
    }, variables);
    // The clip is queued before any read, so the step's logged numbers (loss, terms, gradient
    // norm) come back from the device in one asynchronous read, the step's only one.
    const joined = gradientVector(variables, grads);
    const clipped = clipByNorm(joined.vector, options.clipNorm);
    try {
      const [lossValue, normValue, ...termValues] = await Promise.all([value.data(), clipped.norm.data(), ...Object.values(terms).map((t) => t.data())]);
      const names = Object.keys(terms);
      const numbers = Object.fromEntries(names.map((n, i) => [n, termValues[i]![0]!]));
      const loss = lossValue[0]!;
      const nonFiniteTerms = names.filter((n) => !Number.isFinite(numbers[n]!));
      if (!Number.isFinite(loss)) {
        return { loss, terms: numbers, numPositives, gradNorm: NaN, applied: false, nonFiniteTerms: nonFiniteTerms.length ? nonFiniteTerms : ['total'], maps, pseudoBoxes };
      }
      const gradNorm = normValue[0]!;
      if (!Number.isFinite(gradNorm)) {
        return { loss, terms: numbers, numPositives, gradNorm, applied: false, nonFiniteTerms: ['gradient'], maps, pseudoBoxes };
      }
      // Measured before the update, on the same weights and batch as this step's gradient.
      const gradientNorms = options.measureGradients ? await measureGradientNorms(session, tapsT, batch, assignments, options.pseudoDetection ?? false) : undefined;
      optimizer.applyVector({ variables: joined.variables, vector: clipped.vector }, options.lr);
      return { loss, terms: numbers, numPositives, gradNorm, applied: true, nonFiniteTerms: [], maps, pseudoBoxes, ...(gradientNorms ? { gradientNorms } : {}) };
    } finally {
      tf.dispose([clipped.norm, clipped.vector, joined.vector]);
      tf.dispose([value, ...Object.values(grads)]);
      tf.dispose([...new Set(Object.values(terms))].filter((t) => t !== value));
    }
  } finally {
    if (tapsT) disposeTaps(tapsT);
  }
}
