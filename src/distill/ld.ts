/**
 * LD, localization distillation: Zheng, Ye, Wang, Cao, Ren, Hu, Zuo, "Localization Distillation
 * for Dense Object Detection", CVPR 2022 (official code: HikariTJU/LD, and mmdetection's
 * LDHead with KnowledgeDistillationKLDivLoss).
 *
 * Each box edge (left, top, right, bottom) of an anchor is a distribution over regMax + 1 bins.
 * Per edge, with temperature T (10):
 *   ld_e = T² · mean over bins of p_T,b · (log p_T,b − log p_S,b),  p = softmax(z / T),
 * i.e. T² · KL(p_T || p_S) / (regMax + 1): the official KnowledgeDistillationKLDivLoss takes the
 * element-wise KL terms and averages them over the bins (`kl_div(reduction='none').mean(1)`),
 * it does not sum them. Per anchor, ld_i = mean of ld_e over its 4 edges (the official
 * avg_factor 4).
 *
 * Main region: the positives of the assignment, each weighted by w_i = max_c sigmoid(student
 * class logit of anchor i), a constant for the gradient (stopGradient), as GFL weights DFL.
 * VLR (valuable localisation region): every anchor of every level whose anchor-box IoU with
 * some GT j (the assignment's `ious`) lies in [alphaVlr · thr_j, thr_j), thr_j that GT's ATSS
 * threshold; weighted by v_i = the largest such IoU (the official weight; `vlrWeighting:
 * 'uniform'` gives 1). Positives are not removed from the VLR of another GT, as in the official
 * code. (The official code tests DIoU against the IoU threshold; here it is the IoU, as the
 * lab's method description says.)
 *
 * Normalisation (`normalize`), the same for both regions, over the whole batch:
 * - 'weight-sum' (default): main = Sum w_i ld_i / Sum w_i and vlr = Sum v_i ld_i / Sum v_i,
 *   weighted means, like the student's DFL in `gfl-loss.ts` (divided by Sum w). The loss then
 *   does not grow with the batch size or the number of objects, and mainWeight 0.25 puts LD on
 *   the scale of DFL (also 0.25).
 * - 'sum': the official reductions: main = Sum w_i ld_i (not divided by the number of
 *   positives) and vlr = Sum v_i ld_i / 4 (the official avg_factor 16 over 4 edges).
 * Either is 0 when its region is empty.
 *
 * Optional main-region class KD (`classKd`, off by default): at the positives,
 * Tc² · mean over classes of the KL terms between softmax(z_T/Tc) and softmax(z_S/Tc) over the
 * class logits (Tc 2), averaged over each level's positives (of the whole batch) and summed over
 * the levels, as the official LD head does (per-level avg_factor = that level's positives; a level
 * without positives adds 0); weight 10, which assumes that normalisation. The authors' full GFL configs
 * (with VLR) enable it with these values, mmdetection's LD config does not; it is off here because
 * class knowledge is the separate 'kd' method's, so LD alone measures localisation knowledge,
 * and because it needs the teacher's classes in the student's label space (`teacherClassIndex`,
 * student class k → teacher channel; null: same label space).
 *
 * Inputs: boxT, boxS [N,H,W,4·(regMax+1)] box-distribution logits per level (same regMax);
 * clsS [N,H,W,K] class logits per level (for w_i); clsT only with classKd; one Assignment
 * per image on the grid of these levels.
 * Defaults: T 10, mainWeight 0.25, vlrWeight 0.25, alphaVlr 0.25, VLR weighted by IoU,
 * 'weight-sum', class KD off (Tc 2, weight 10).
 * loss = mainWeight · main + vlrWeight · vlr (+ classKdWeight · classKd).
 *
 * Maps (withMaps): per level, 'main' and 'vlr' region masks [N,H,W] (0/1); and for the GT
 * `mapGt` of image `mapImage`, at its best positive anchor (highest anchor IoU with it), the
 * teacher's and the student's distribution of each edge: 'edge-left', 'edge-top',
 * 'edge-right', 'edge-bottom' (`distribution` panels over the bins, softmax at temperature 1,
 * the distributions the boxes are decoded from). No edge maps when that GT has no positive.
 * Terms: 'main', 'vlr' (and 'classKd'), before their weights.
 */
import * as tf from '@tensorflow/tfjs';
import type { Assignment } from '../detect/assignment';
import { binsOf, distributionMap, flattenRows, selectTeacherClasses, setDistribution, teacherChannels } from './head-outputs';
import { checkAssignments, checkLevelPairs } from './levels';
import { readValues } from './readback';
import { detached, stopGradient, type MethodResult, type PanelMap } from './types';
import { gatherRows } from '../graph/ops/gather';

export interface LdParams {
  /** Temperature of the edge distributions. */
  temperature: number;
  mainWeight: number;
  vlrWeight: number;
  /** The VLR is [alphaVlr · thr, thr) in anchor IoU. */
  alphaVlr: number;
  vlrWeighting: 'iou' | 'uniform';
  normalize: 'weight-sum' | 'sum';
  classKd: boolean;
  classKdWeight: number;
  classKdTemperature: number;
  /** Student class k → teacher channel (class KD only); null: the same label space. */
  teacherClassIndex: readonly number[] | null;
  /** The object whose edge distributions the maps show. */
  mapImage: number;
  mapGt: number;
}

export const LD_DEFAULTS: Readonly<LdParams> = {
  temperature: 10,
  mainWeight: 0.25,
  vlrWeight: 0.25,
  alphaVlr: 0.25,
  vlrWeighting: 'iou',
  normalize: 'weight-sum',
  classKd: false,
  classKdWeight: 10,
  classKdTemperature: 2,
  teacherClassIndex: null,
  mapImage: 0,
  mapGt: 0,
};

export interface LdInputs {
  boxT: tf.Tensor4D[];
  boxS: tf.Tensor4D[];
  clsS: tf.Tensor4D[];
  /** Needed only with classKd. */
  clsT?: tf.Tensor4D[];
  assignments: Assignment[];
}

const EDGES = ['left', 'top', 'right', 'bottom'] as const;

/**
 * VLR weight of every anchor of one image (0 outside the region): the largest IoU among the GTs
 * j with alphaVlr · thr_j <= IoU < thr_j ('iou'), or 1 ('uniform').
 */
export function vlrWeights(assignment: Assignment, alphaVlr: number, weighting: LdParams['vlrWeighting']): Float32Array {
  const { grid, gts, ious, thresholds } = assignment;
  const a = grid.count;
  const out = new Float32Array(a);
  gts.forEach((_, j) => {
    const thr = thresholds[j] ?? 0;
    const low = alphaVlr * thr;
    for (let i = 0; i < a; i++) {
      const v = ious[j * a + i] ?? 0;
      if (v >= low && v < thr) out[i] = weighting === 'iou' ? Math.max(out[i] ?? 0, v) : 1;
    }
  });
  return out;
}

/** Per-row LD [R]: mean over the 4 edges of T² · mean over bins of the KL terms. */
function ldPerRow(zT: tf.Tensor2D, zS: tf.Tensor2D, bins: number, temperature: number): tf.Tensor1D {
  return tf.tidy(() => {
    const r = zT.shape[0];
    const logT = tf.logSoftmax(tf.div(tf.reshape(zT, [r, 4, bins]), temperature));
    const logS = tf.logSoftmax(tf.div(tf.reshape(zS, [r, 4, bins]), temperature));
    const klTerms = tf.mul(tf.exp(logT), tf.sub(logT, logS));
    return tf.mul(tf.mean(tf.mean(klTerms, 2), 1), temperature * temperature) as tf.Tensor1D;
  });
}

/**
 * 1 / (positives of the row's level over the batch) on positive rows, 0 elsewhere: summing
 * weight · value over the rows averages each level over its positives and adds the levels.
 */
export function perLevelMeanWeights(positive: Float32Array, grid: Assignment['grid'], images: number): Float32Array {
  const a = grid.count;
  const out = new Float32Array(positive.length);
  for (const level of grid.levels) {
    const end = level.offset + level.height * level.width;
    let count = 0;
    for (let n = 0; n < images; n++) for (let i = level.offset; i < end; i++) count += positive[n * a + i] ?? 0;
    if (count === 0) continue;
    for (let n = 0; n < images; n++) for (let i = level.offset; i < end; i++) out[n * a + i] = (positive[n * a + i] ?? 0) / count;
  }
  return out;
}

function heatmapFromAnchors(name: string, level: number, assignments: Assignment[], flags: Float32Array[]): PanelMap {
  const g = (assignments[0] as Assignment).grid.levels[level];
  if (!g) throw new Error(`LD: no level ${level} in the grid.`);
  const hw = g.height * g.width;
  const data = new Float32Array(assignments.length * hw);
  flags.forEach((f, n) => {
    for (let i = 0; i < hw; i++) data[n * hw + i] = (f[g.offset + i] ?? 0) > 0 ? 1 : 0;
  });
  return { kind: 'heatmap', name, level, shape: [assignments.length, g.height, g.width], data };
}

export function ld(inputs: LdInputs, params: Partial<LdParams> = {}, options: { withMaps?: boolean } = {}): MethodResult {
  const p = { ...LD_DEFAULTS, ...params };
  const { boxT, boxS, clsS, assignments } = inputs;
  checkLevelPairs('LD', 'box-logit', boxT, boxS);
  checkLevelPairs('LD', 'class/box', clsS, boxS);
  checkAssignments('LD', assignments, boxS);
  const bins = binsOf('LD', 'student', boxS);
  if (binsOf('LD', 'teacher', boxT) !== bins) {
    throw new Error(
      `LD: the teacher has ${binsOf('LD', 'teacher', boxT)} bins per edge and the student ${bins}; LD compares distributions over the same bins (same regMax).`,
    );
  }
  if (!(p.temperature > 0)) throw new Error(`LD: temperature must be positive, got ${p.temperature}.`);
  if (!(p.alphaVlr >= 0 && p.alphaVlr <= 1)) throw new Error(`LD: alphaVlr must lie in [0, 1], got ${p.alphaVlr}.`);
  let channels: number[] | null = null;
  if (p.classKd) {
    if (!inputs.clsT) throw new Error('LD: classKd needs the teacher class logits clsT; pass them or set classKd false.');
    checkLevelPairs('LD', 'class-logit', inputs.clsT, clsS);
    if (!(p.classKdTemperature > 0)) throw new Error(`LD: classKdTemperature must be positive, got ${p.classKdTemperature}.`);
    channels = teacherChannels('LD', p.teacherClassIndex, (inputs.clsT[0] as tf.Tensor4D).shape[3], (clsS[0] as tf.Tensor4D).shape[3]);
  }

  const grid = (assignments[0] as Assignment).grid;
  const a = grid.count;
  const rows = assignments.length * a;
  const positive = new Float32Array(rows);
  const vlr = new Float32Array(rows);
  const positiveFlags: Float32Array[] = [];
  const vlrFlags: Float32Array[] = [];
  assignments.forEach((asg, n) => {
    const pos = new Float32Array(a);
    asg.assignedGt.forEach((g, i) => {
      if (g >= 0) pos[i] = 1;
    });
    const v = vlrWeights(asg, p.alphaVlr, p.vlrWeighting);
    positive.set(pos, n * a);
    vlr.set(v, n * a);
    positiveFlags.push(pos);
    vlrFlags.push(v);
  });
  let vlrSum = 0;
  for (let r = 0; r < rows; r++) vlrSum += vlr[r] ?? 0;

  // Only positive and VLR rows carry weight: the distributions are computed on those rows alone
  // (a few hundred of the 56,784 anchors of a batch of 4 at 416), or on all when there are none.
  const active: number[] = [];
  for (let r = 0; r < rows; r++) if ((positive[r] ?? 0) > 0 || (vlr[r] ?? 0) > 0) active.push(r);
  const activeRows = active.length > 0 ? Int32Array.from(active) : null;
  const onActive = (values: Float32Array) => (activeRows ? Float32Array.from(activeRows, (r) => values[r]!) : values);
  const pick = (t: tf.Tensor2D) => (activeRows ? gatherRows(t, activeRows) : t);

  const maps: PanelMap[] = [];
  const out = tf.tidy(() => {
    const zT = flattenRows(boxT.map((t) => stopGradient(t)), grid);
    const zS = flattenRows(boxS, grid);
    const clsSRows = pick(flattenRows(clsS, grid));
    const perRow = ldPerRow(pick(zT), pick(zS), bins, p.temperature);
    const pos = tf.tensor1d(onActive(positive));

    // w_i: the student's highest class score, a constant weight.
    const w = detached(() => tf.mul(tf.max(tf.sigmoid(clsSRows), 1), pos));
    const mainSum = tf.sum(tf.mul(w, perRow));
    const main = (p.normalize === 'sum' ? mainSum : tf.div(mainSum, tf.maximum(tf.sum(w), 1e-12))) as tf.Scalar;
    const vlrTotal = tf.sum(tf.mul(tf.tensor1d(onActive(vlr)), perRow));
    const vlrTerm = tf.div(vlrTotal, p.normalize === 'sum' ? 4 : Math.max(vlrSum, 1e-12)) as tf.Scalar;

    const terms: Record<string, tf.Scalar> = { main, vlr: vlrTerm };
    const parts = [tf.mul(main, p.mainWeight), tf.mul(vlrTerm, p.vlrWeight)];
    if (channels && inputs.clsT) {
      const tc = p.classKdTemperature;
      const teacher = selectTeacherClasses(pick(flattenRows(inputs.clsT.map((t) => stopGradient(t)), grid)), channels);
      const logT = tf.logSoftmax(tf.div(teacher, tc));
      const logS = tf.logSoftmax(tf.div(clsSRows, tc));
      const perClassRow = tf.mul(tf.mean(tf.mul(tf.exp(logT), tf.sub(logT, logS)), 1), tc * tc);
      const classKd = tf.sum(tf.mul(perClassRow, tf.tensor1d(onActive(perLevelMeanWeights(positive, grid, assignments.length))))) as tf.Scalar;
      terms['classKd'] = classKd;
      parts.push(tf.mul(classKd, p.classKdWeight));
    }
    if (options.withMaps) {
      grid.levels.forEach((_, l) => {
        maps.push(heatmapFromAnchors('main', l, assignments, positiveFlags), heatmapFromAnchors('vlr', l, assignments, vlrFlags));
      });
      maps.push(...edgeMaps(assignments, p.mapImage, p.mapGt, zT, zS, bins));
    }
    return { loss: tf.addN(parts) as tf.Scalar, terms };
  });
  return options.withMaps ? { ...out, maps } : out;
}

/** The 4 edge distributions (T and S, temperature 1) at the chosen GT's best positive anchor. */
function edgeMaps(assignments: Assignment[], image: number, gt: number, zT: tf.Tensor2D, zS: tf.Tensor2D, bins: number): PanelMap[] {
  const asg = assignments[image];
  const anchors = asg?.positives[gt];
  if (!asg || !anchors || anchors.length === 0) return [];
  const a = asg.grid.count;
  let best = anchors[0] as number;
  for (const i of anchors) if ((asg.ious[gt * a + i] ?? 0) > (asg.ious[gt * a + best] ?? 0)) best = i;
  const level = asg.grid.levels.findIndex((g) => best >= g.offset && best < g.offset + g.height * g.width);
  const row = image * a + best;
  // One positions buffer per map: a map's buffers may be transferred to the UI.
  const maps = EDGES.map((edge) =>
    distributionMap({
      name: `edge-${edge}`,
      level,
      positionKind: 'bin',
      positions: Int32Array.from({ length: bins }, (_, b) => b),
      image,
      gt,
      anchor: best,
    }),
  );
  // [2, 4, bins]: teacher then student, softmax over each edge's bins.
  const dists = tf.softmax(tf.reshape(tf.concat([tf.slice(zT, [row, 0], [1, 4 * bins]), tf.slice(zS, [row, 0], [1, 4 * bins])]), [2, 4, bins]));
  readValues(dists, (v) => {
    maps.forEach((m, e) => setDistribution(m, v.subarray(e * bins, (e + 1) * bins), v.subarray((4 + e) * bins, (5 + e) * bins)));
  });
  return maps;
}
