import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { conv3x3Connector } from './connectors';
import { fgfi, fgfiAnchorMask } from './fgfi';
import { closeArrays, handAssignment, handGrid, maxAbs } from './test-support';
import type { PanelMap } from './types';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

// Two levels: 2x2 (anchors 0..3) and 1x1 (anchor 4).
const twoLevels = handGrid([
  { stride: 8, height: 2, width: 2 },
  { stride: 16, height: 1, width: 1 },
]);

describe('fgfiAnchorMask', () => {
  // GT0 IoUs [0.1, 0.6, 0.3, 0.2 | 0.25]; GT1 [0, 0, 0, 0.2 | 0.08].
  const a = handAssignment({
    grid: twoLevels,
    ious: [
      [0.1, 0.6, 0.3, 0.2, 0.25],
      [0, 0, 0, 0.2, 0.08],
    ],
  });
  it('thresholds at psi · max IoU over all levels, strictly greater, OR over GTs', () => {
    // GT0: max 0.6, thr 0.3 -> anchor 1 only (0.3 is not > 0.3, 0.25 < 0.3).
    // GT1: max 0.2, thr 0.1 -> anchor 3 only.
    expect(Array.from(fgfiAnchorMask(a, 0.5, 'all-levels'))).toEqual([0, 1, 0, 1, 0]);
  });
  it('takes the max per level when asked', () => {
    // Level 1 alone: GT0 max 0.25, thr 0.125 -> on; GT1 max 0.08, thr 0.04 -> on.
    expect(Array.from(fgfiAnchorMask(a, 0.5, 'per-level'))).toEqual([0, 1, 0, 1, 1]);
  });
  it('psi 0 turns on every anchor with any overlap', () => {
    expect(Array.from(fgfiAnchorMask(a, 0, 'all-levels'))).toEqual([1, 1, 1, 1, 1]);
  });
});

describe('fgfi', () => {
  const grid = handGrid([{ stride: 8, height: 2, width: 2 }]);
  // One GT with IoUs [0.5, 0.6, 0.3, 0.1]: thr 0.3 -> mask on at locations 0 and 1, N_p = 2.
  const assignment = handAssignment({ grid, ious: [[0.5, 0.6, 0.3, 0.1]] });
  // Teacher [1,2,2,2]: locations (row-major) [1,2], [3,4], [5,6], [7,8]; student zeros.
  const teacherValues = [1, 2, 3, 4, 5, 6, 7, 8];

  it('computes lambda · Sum I·(T − S)² / (2·N_p) and its maps', () => {
    const t = tf.tensor4d(teacherValues, [1, 2, 2, 2]);
    const s = tf.zeros([1, 2, 2, 2]) as tf.Tensor4D;
    const before = tf.memory().numTensors;
    const r = fgfi({ featT: [t], featS: [s], assignments: [assignment] }, {}, { withMaps: true });
    // Inside the mask: (1² + 2²) + (3² + 4²) = 5 + 25 = 30; / (2·2) = 7.5; · 0.01 = 0.075.
    expect(r.terms['imitation']?.dataSync()[0]).toBeCloseTo(7.5, 6);
    expect(r.loss.dataSync()[0]).toBeCloseTo(0.075, 7);
    const mask = r.maps?.find((m) => m.name === 'mask');
    const error = r.maps?.find((m) => m.name === 'error');
    expect(mask?.shape).toEqual([1, 2, 2]);
    expect(Array.from(mask?.data ?? [])).toEqual([1, 1, 0, 0]);
    expect(Array.from(error?.data ?? [])).toEqual([5, 25, 0, 0]);
    r.loss.dispose();
    Object.values(r.terms).forEach((x) => x.dispose());
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([t, s]);
  });

  it('honours lambda and counts N_p over the whole batch', () => {
    // Image 2 has its mask at location 3 only: error there (7² + 8²) = 113 with a zero student.
    const second = handAssignment({ grid, ious: [[0, 0, 0, 0.9]] });
    const t = tf.tensor4d([...teacherValues, ...teacherValues], [2, 2, 2, 2]);
    const s = tf.zeros([2, 2, 2, 2]) as tf.Tensor4D;
    const r = fgfi({ featT: [t], featS: [s], assignments: [assignment, second] }, { lambda: 1 });
    // (30 + 113) / (2 · 3) = 23.8333...
    expect(r.loss.dataSync()[0]).toBeCloseTo(143 / 6, 4);
    tf.dispose([t, s, r.loss, ...Object.values(r.terms)]);
  });

  it('is zero when the student equals the teacher through an identity adapter', () => {
    const t = tf.randomUniform([1, 2, 2, 3], 0, 2, 'float32', 1) as tf.Tensor4D;
    const adapter = conv3x3Connector(3, 3, { init: 'identity', relu: true });
    const r = fgfi({ featT: [t], featS: [t], assignments: [assignment], adapters: [adapter] });
    expect(r.loss.dataSync()[0]).toBeCloseTo(0, 7);
    tf.dispose([t, r.loss, ...Object.values(r.terms)]);
    adapter.dispose();
  });

  it('sends gradient to the student (−lambda·I·(T − S)/N_p) and none to the teacher', () => {
    const t = tf.tensor4d(teacherValues, [1, 2, 2, 2]);
    const s = tf.zeros([1, 2, 2, 2]) as tf.Tensor4D;
    const [gT, gS] = tf.grads((a, b) => fgfi({ featT: [a as tf.Tensor4D], featS: [b as tf.Tensor4D], assignments: [assignment] }).loss)([t, s]);
    // d/dS of 0.01·Sum I (T − S)²/(2·2) = −0.01·I·(T − S)/2: location 0 -> [−0.005, −0.01].
    expect(closeArrays(gS?.dataSync() ?? [], [-0.005, -0.01, -0.015, -0.02, 0, 0, 0, 0], 1e-7)).toBeNull();
    expect(Array.from(gT?.dataSync() ?? [])).toEqual(new Array(8).fill(0));
    tf.dispose([t, s, gT as tf.Tensor, gS as tf.Tensor]);
  });

  it('trains the adapter and the student, leaves the teacher alone, and leaks nothing in a step', () => {
    const adapter = conv3x3Connector(3, 2, { relu: true, seed: 3, std: 0.5 });
    const teacher = tf.variable(tf.tensor4d(teacherValues, [1, 2, 2, 2]), true, 'fgfi_test_teacher');
    const student = tf.variable(tf.randomUniform([1, 2, 2, 3], 0, 1, 'float32', 2), true, 'fgfi_test_student');
    const before = tf.memory().numTensors;
    const { value, grads } = tf.variableGrads(
      () => fgfi({ featT: [teacher as tf.Tensor4D], featS: [student as tf.Tensor4D], assignments: [assignment], adapters: [adapter] }).loss,
    );
    expect(value.dataSync()[0]).toBeGreaterThan(0);
    for (const v of [student, ...adapter.variables]) {
      const g = grads[v.name];
      expect(g, v.name).toBeDefined();
      expect(maxAbs(g as tf.Tensor)).toBeGreaterThan(0);
    }
    const gTeacher = grads[teacher.name];
    if (gTeacher) expect(maxAbs(gTeacher)).toBe(0);
    tf.dispose([value, ...Object.values(grads)]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([teacher, student]);
    adapter.dispose();
  });

  it('runs the adapter at the masked locations only, with the loss, maps and gradients of the whole map', () => {
    // Two levels, two images; image 1 masks anchor 1, image 2 anchor 3: level 1 has nothing masked.
    const assignmentsTwo = [
      handAssignment({ grid: twoLevels, ious: [[0.1, 0.6, 0.3, 0.2, 0.25]] }),
      handAssignment({ grid: twoLevels, ious: [[0, 0, 0, 0.9, 0.2]] }),
    ];
    const adapters = [0, 1].map((l) => conv3x3Connector(3, 2, { relu: true, init: 'uniform', seed: 20 + l }));
    // The same adapters without applyAt: the whole-map path.
    const wholeMap = adapters.map((a) => ({ ...a, applyAt: undefined }));
    const featT = [tf.randomNormal([2, 2, 2, 2], 0, 1, 'float32', 1), tf.randomNormal([2, 1, 1, 2], 0, 1, 'float32', 2)] as tf.Tensor4D[];
    const featS = [tf.variable(tf.randomNormal([2, 2, 2, 3], 0, 1, 'float32', 3), true, 'fgfi_masked_s0'), tf.variable(tf.randomNormal([2, 1, 1, 3], 0, 1, 'float32', 4), true, 'fgfi_masked_s1')];
    const variables = [...featS, ...adapters.flatMap((a) => a.variables)];
    const run = (a: typeof adapters) => {
      let maps: PanelMap[] = [];
      const g = tf.variableGrads(() => {
        const r = fgfi({ featT, featS: featS as tf.Tensor4D[], assignments: assignmentsTwo, adapters: a }, { lambda: 1 }, { withMaps: true });
        maps = r.maps ?? [];
        return r.loss;
      }, variables);
      return { ...g, maps };
    };
    const before = tf.memory().numTensors;
    const masked = run(adapters);
    const whole = run(wholeMap);
    expect(masked.value.dataSync()[0]).toBeGreaterThan(0);
    expect(masked.value.dataSync()[0]).toBeCloseTo(whole.value.dataSync()[0]!, 5);
    expect(masked.maps.map((m) => m.name)).toEqual(whole.maps.map((m) => m.name));
    masked.maps.forEach((m, i) => expect(closeArrays(m.data, whole.maps[i]!.data, 1e-5), m.name).toBeNull());
    for (const v of variables) {
      expect(masked.grads[v.name], v.name).toBeDefined();
      expect(closeArrays(masked.grads[v.name]!.dataSync(), whole.grads[v.name]!.dataSync(), 1e-5), v.name).toBeNull();
    }
    // Level 1's adapter reads nothing masked: a zero gradient, as from the whole map.
    expect(maxAbs(masked.grads[adapters[1]!.variables[0]!.name]!)).toBe(0);
    tf.dispose([masked.value, whole.value, ...Object.values(masked.grads), ...Object.values(whole.grads)]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([...featT, ...featS]);
    adapters.forEach((a) => a.dispose());
  });

  it('rejects mismatched inputs with a clear message', () => {
    const t = tf.zeros([1, 2, 2, 2]) as tf.Tensor4D;
    const s3 = tf.zeros([1, 2, 2, 3]) as tf.Tensor4D;
    const wrongGrid = tf.zeros([1, 3, 3, 2]) as tf.Tensor4D;
    expect(() => fgfi({ featT: [t], featS: [s3], assignments: [assignment] })).toThrow(/pass an adapter/);
    expect(() => fgfi({ featT: [wrongGrid], featS: [wrongGrid], assignments: [assignment] })).toThrow(/2x2 in the anchor grid/);
    expect(() => fgfi({ featT: [t], featS: [t], assignments: [] })).toThrow(/one per image/);
    tf.dispose([t, s3, wrongGrid]);
  });
});
