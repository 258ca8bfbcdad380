/**
 * How closely a student's class scores follow its teacher's on images, where it matters: at the
 * locations where the teacher sees an object (its top class probability above a threshold) and
 * elsewhere. On a small evaluation set VOC mAP moves by whole objects (a class with one or two
 * instances gains or loses 25–50 AP when one detection changes rank), so a distillation run's
 * progress shows first, and more steadily, in these numbers.
 *
 * Per image batch, with p = sigmoid(logits) in the student's classes (the teacher read at the
 * student's classes) and "object locations" those where max_c p_T > threshold:
 * - teacherScore: the teacher's top probability there (mean);
 * - studentScore: the student's probability of the teacher's top class there (mean);
 * - sameTopClass: the share of object locations where both rank the same class first;
 * - objectDivergence, backgroundDivergence: Sum_c BCE(p_T, p_S) − BCE(p_T, p_T) per location,
 *   averaged over the object locations and over the rest (0 when the student matches).
 */
import * as tf from '@tensorflow/tfjs';
import type { TrainingBatch } from '../data/pipeline';
import { disposeTaps, readDetector, type ReadOptions } from '../train/detector-taps';
import { teacherChannelsForStudent, type ModelHandle } from '../train/session';

export interface FidelitySums {
  locations: number;
  objectLocations: number;
  teacherScore: number;
  studentScore: number;
  sameTopClass: number;
  objectDivergence: number;
  backgroundDivergence: number;
}

export interface FidelityReport {
  /** Images measured. */
  imageCount: number;
  threshold: number;
  locations: number;
  objectLocations: number;
  teacherScore: number | null;
  studentScore: number | null;
  sameTopClass: number | null;
  objectDivergence: number | null;
  backgroundDivergence: number | null;
}

export const DEFAULT_FIDELITY_THRESHOLD = 0.3;

const emptySums = (): FidelitySums => ({ locations: 0, objectLocations: 0, teacherScore: 0, studentScore: 0, sameTopClass: 0, objectDivergence: 0, backgroundDivergence: 0 });

/** Sums over every location of the levels (class logits [N,H,W,K] per level, the same classes in both). */
export function fidelitySums(clsT: readonly tf.Tensor4D[], clsS: readonly tf.Tensor4D[], threshold: number): FidelitySums {
  if (clsT.length !== clsS.length) throw new Error(`Fidelity: the teacher has ${clsT.length} levels and the student ${clsS.length}.`);
  const values = tf.tidy(() => {
    const rows = (levels: readonly tf.Tensor4D[]) => tf.concat(levels.map((t) => tf.reshape(t, [-1, t.shape[3]])));
    const zT = rows(clsT);
    const zS = rows(clsS);
    if (zT.shape[1] !== zS.shape[1]) throw new Error(`Fidelity: the teacher is read with ${zT.shape[1]} classes and the student has ${zS.shape[1]}.`);
    const pT = tf.sigmoid(zT);
    const pS = tf.sigmoid(zS);
    const bce = (z: tf.Tensor) => tf.sum(tf.sub(tf.softplus(z), tf.mul(pT, z)), 1);
    const divergence = tf.sub(bce(zS), bce(zT));
    const topT = tf.max(pT, 1);
    const object = tf.cast(tf.greater(topT, threshold), 'float32');
    const classT = tf.argMax(pT, 1);
    const studentOfTop = tf.sum(tf.mul(pS, tf.oneHot(classT, pT.shape[1]!)), 1);
    const same = tf.cast(tf.equal(classT, tf.argMax(pS, 1)), 'float32');
    return tf.stack([
      tf.sum(object),
      tf.sum(tf.mul(topT, object)),
      tf.sum(tf.mul(studentOfTop, object)),
      tf.sum(tf.mul(same, object)),
      tf.sum(tf.mul(divergence, object)),
      tf.sum(tf.mul(divergence, tf.sub(1, object))),
    ]).dataSync();
  });
  const locations = clsT.reduce((n, t) => n + t.shape[0] * t.shape[1] * t.shape[2], 0);
  const [objectLocations, teacherScore, studentScore, sameTopClass, objectDivergence, backgroundDivergence] = Array.from(values);
  return { locations, objectLocations: objectLocations!, teacherScore: teacherScore!, studentScore: studentScore!, sameTopClass: sameTopClass!, objectDivergence: objectDivergence!, backgroundDivergence: backgroundDivergence! };
}

export function addSums(a: FidelitySums, b: FidelitySums): FidelitySums {
  return {
    locations: a.locations + b.locations,
    objectLocations: a.objectLocations + b.objectLocations,
    teacherScore: a.teacherScore + b.teacherScore,
    studentScore: a.studentScore + b.studentScore,
    sameTopClass: a.sameTopClass + b.sameTopClass,
    objectDivergence: a.objectDivergence + b.objectDivergence,
    backgroundDivergence: a.backgroundDivergence + b.backgroundDivergence,
  };
}

export function fidelityReport(s: FidelitySums, images: number, threshold: number): FidelityReport {
  const perObject = (x: number) => (s.objectLocations > 0 ? x / s.objectLocations : null);
  const background = s.locations - s.objectLocations;
  return {
    imageCount: images,
    threshold,
    locations: s.locations,
    objectLocations: s.objectLocations,
    teacherScore: perObject(s.teacherScore),
    studentScore: perObject(s.studentScore),
    sameTopClass: perObject(s.sameTopClass),
    objectDivergence: perObject(s.objectDivergence),
    backgroundDivergence: background > 0 ? s.backgroundDivergence / background : null,
  };
}

/** The sums a report was made from (its means times the locations they average over). */
function sumsOf(r: FidelityReport): FidelitySums {
  const objects = r.objectLocations;
  return {
    locations: r.locations,
    objectLocations: objects,
    teacherScore: (r.teacherScore ?? 0) * objects,
    studentScore: (r.studentScore ?? 0) * objects,
    sameTopClass: (r.sameTopClass ?? 0) * objects,
    objectDivergence: (r.objectDivergence ?? 0) * objects,
    backgroundDivergence: (r.backgroundDivergence ?? 0) * (r.locations - objects),
  };
}

/** One report over the images of several (cross-validation folds), as if measured in one pass. */
export function poolFidelity(reports: readonly FidelityReport[]): FidelityReport {
  const first = reports[0];
  if (!first) throw new Error('poolFidelity: no report to pool.');
  if (reports.some((r) => r.threshold !== first.threshold)) throw new Error('poolFidelity: the reports were measured at different thresholds.');
  const sums = reports.map(sumsOf).reduce(addSums);
  return fidelityReport(sums, reports.reduce((n, r) => n + r.imageCount, 0), first.threshold);
}

/** The student's agreement with the teacher over batches of images (read in the student's classes). */
export async function measureFidelity(
  teacher: ModelHandle,
  student: ModelHandle,
  batches: AsyncIterable<TrainingBatch>,
  options: { threshold?: number } = {},
): Promise<FidelityReport> {
  const threshold = options.threshold ?? DEFAULT_FIDELITY_THRESHOLD;
  const channels = teacherChannelsForStudent(teacher.manifest, student.manifest);
  const missing = student.manifest.classes.filter((_, k) => channels[k] === undefined);
  if (missing.length) throw new Error(`The teacher has no class for the student's ${missing.join(', ')}: their scores cannot be compared.`);
  const identity = channels.length === teacher.manifest.classes.length && channels.every((c, i) => c === i);
  const readT: ReadOptions = identity ? {} : { classChannels: channels as number[] };
  let sums = emptySums();
  let images = 0;
  for await (const batch of batches) {
    try {
      const tapsT = readDetector(teacher.graph, teacher.manifest, batch.input, readT);
      const tapsS = readDetector(student.graph, student.manifest, batch.input);
      try {
        sums = addSums(sums, fidelitySums(tapsT.cls, tapsS.cls, threshold));
      } finally {
        disposeTaps(tapsT);
        disposeTaps(tapsS);
      }
      images += batch.ids.length;
    } finally {
      batch.input.dispose();
    }
  }
  return fidelityReport(sums, images, threshold);
}

/** One line for a log or a table. */
export function fidelityLine(r: FidelityReport): string {
  const f = (x: number | null, d = 3) => (x === null ? 'n/a' : x.toFixed(d));
  return `at the ${r.objectLocations} locations where the teacher sees an object (score > ${r.threshold}): teacher score ${f(r.teacherScore)}, student ${f(r.studentScore)}, same top class ${r.sameTopClass === null ? 'n/a' : `${(100 * r.sameTopClass).toFixed(1)}%`}, divergence ${f(r.objectDivergence, 4)}; elsewhere divergence ${f(r.backgroundDivergence, 5)}`;
}
