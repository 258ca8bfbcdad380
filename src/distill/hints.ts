/**
 * Hint matching at every stage, after FitNets: Romero, Ballas, Kahou, Chassang, Gatta, Bengio,
 * "FitNets: Hints for Thin Deep Nets", ICLR 2015. FitNets regresses one middle layer of the
 * student onto the teacher's; here every tapped tensor is a hint: the backbone stage outputs,
 * the neck outputs and the head features. It needs no boxes, so it works on photos without
 * annotations, and it is the natural repair for a student derived from the teacher by channel
 * pruning: there the teacher is read at the channels the student kept (`derivedFrom.tapChannels`),
 * so each student tensor has an exact teacher counterpart and no regressor is needed.
 *
 * Per tap t, with the teacher's per-channel variance v_c over the batch and its locations:
 *   e_t = mean over N,H,W,C of (T − r(S))² / (mean_c v_c + 1e-6)
 * i.e. the squared error relative to the teacher's own spread (1 when the student outputs the
 * teacher's per-channel mean everywhere, 0 when it matches exactly). Taps of different scale and
 * depth then weigh alike. r is the identity when channel counts agree, else a 1x1 conv regressor
 * (a connector). Terms: 'stage', 'neck', 'head', the mean e_t of each group present.
 * Loss = weight · mean of e_t over every tap. Defaults: weight 1, all three groups on.
 *
 * Maps (per tap): '<group> error', the per-location error [N,H,W] (mean over channels, / v).
 */
import * as tf from '@tensorflow/tfjs';
import { heatmap } from './levels';
import { detached, stopGradient, type Connector, type MethodResult, type PanelMap } from './types';
import { channelSums } from '../graph/ops/bias-add';
import { withLazyGradients } from '../graph/ops/tape';

export interface HintParams {
  stages: boolean;
  neck: boolean;
  head: boolean;
  weight: number;
}

export const HINT_DEFAULTS: Readonly<HintParams> = { stages: true, neck: true, head: true, weight: 1 };

export type HintGroup = 'stage' | 'neck' | 'head';

export interface HintInputs {
  /** Teacher and student tensors per tap of each group, [N,H,W,C]. */
  groups: Partial<Record<HintGroup, { teacher: tf.Tensor4D[]; student: tf.Tensor4D[]; regressors?: (Connector | null)[] }>>;
}

const VARIANCE_EPS = 1e-6;

/**
 * Σ (s − t)² / (count · spread), t and spread constants: the mean relative error of a tap without
 * its map. One op whose gradient is the saved difference times 2·dy / (count · spread): tfjs's
 * autodiff of the mean of means spreads dy back over the map and then over the channels, and
 * differentiates the squared difference again (five passes over the tap, here one).
 */
function meanRelativeError(s: tf.Tensor4D, t: tf.Tensor4D, spread: tf.Scalar): tf.Scalar {
  const scale = detached(() => tf.div(1 / s.size, spread));
  const mean = withLazyGradients(
    [s],
    (save) => {
      const d = tf.sub(s, t);
      save([d, scale]);
      // The sum of squares as channel sums first (bias-add.ts: an average pool on wasm) and then
      // the C of them: tfjs-wasm's Sum over all axes is a scalar loop.
      return tf.mul(tf.sum(channelSums(tf.square(d))), scale);
    },
    (dy, [d, k]) => [() => tf.mul(d!, tf.mul(tf.mul(dy, k!), 2))],
  ) as tf.Scalar;
  scale.dispose();
  return mean;
}

/** Per-location relative error [N,H,W] of one tap (only when asked: `withMap`), and its mean. */
function tapError(t: tf.Tensor4D, s: tf.Tensor4D, withMap: boolean): { map?: tf.Tensor3D; mean: tf.Scalar } {
  return tf.tidy(() => {
    const teacher = stopGradient(t);
    // The teacher's spread, a constant for backprop (computed off the tape): the per-channel
    // variance over batch and positions as two passes of channel sums (on wasm an average pool,
    // several times faster there than a mean over the leading axes), averaged over channels.
    const spread = detached(() => {
      const count = teacher.size / teacher.shape[3];
      const mean = tf.div(channelSums(teacher), count);
      // Subtract, then square: tfjs-wasm's SquaredDifference broadcasts [C] over a map element by
      // element through its generic path (about 80 ns each), its Sub and Square in SIMD.
      const variance = tf.div(channelSums(tf.square(tf.sub(teacher, mean))), count);
      return tf.add(tf.mean(variance), VARIANCE_EPS) as tf.Scalar;
    });
    if (!withMap) return { mean: meanRelativeError(s, teacher, spread) };
    const map = tf.div(tf.mean(tf.squaredDifference(s, teacher), 3), spread) as tf.Tensor3D;
    return { map, mean: tf.mean(map) as tf.Scalar };
  });
}

export function hints(inputs: HintInputs, params: Partial<HintParams> = {}, options: { withMaps?: boolean } = {}): MethodResult {
  const p = { ...HINT_DEFAULTS, ...params };
  const on: Record<HintGroup, boolean> = { stage: p.stages, neck: p.neck, head: p.head };
  const chosen = (Object.keys(on) as HintGroup[]).filter((g) => on[g] && inputs.groups[g]);
  if (chosen.length === 0) throw new Error('Hints: no tap group to match; turn on stages, neck or head and give their tensors.');
  const maps: PanelMap[] = [];
  const out = tf.tidy(() => {
    const all: tf.Scalar[] = [];
    const terms: Record<string, tf.Scalar> = {};
    for (const g of chosen) {
      const { teacher, student, regressors } = inputs.groups[g]!;
      if (teacher.length === 0 || teacher.length !== student.length) {
        throw new Error(`Hints: the ${g} group has ${teacher.length} teacher and ${student.length} student taps; both models must name the same taps.`);
      }
      const errors = teacher.map((t, i) => {
        const r = regressors?.[i];
        const s = r ? r.apply(student[i]!) : student[i]!;
        if (s.shape.join() !== t.shape.join()) {
          throw new Error(
            `Hints: ${g} tap ${i} is [${t.shape.join(',')}] in the teacher and [${s.shape.join(',')}] in the student${r ? ' after its regressor' : ''}; the spatial sizes must agree, and channels too unless a regressor maps them.`,
          );
        }
        const e = tapError(t, s, !!options.withMaps);
        if (e.map) maps.push(heatmap(`${g} error`, i, e.map));
        return e.mean;
      });
      all.push(...errors);
      terms[g] = tf.div(tf.addN(errors), errors.length) as tf.Scalar;
    }
    const mean = tf.div(tf.addN(all), all.length) as tf.Scalar;
    return { loss: tf.mul(mean, p.weight) as tf.Scalar, terms };
  });
  return options.withMaps ? { ...out, maps } : out;
}
