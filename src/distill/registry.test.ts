import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { combine, createMethod, getMethod, listMethods, METHODS, PLANNED_METHODS, runMethods, type MethodId } from './registry';
import { handAssignment, handGrid, maxAbs } from './test-support';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('registry', () => {
  it('lists the eight methods, all registered', () => {
    const rows = listMethods();
    expect(rows.map((r) => [r.id, r.registered])).toEqual([
      ['kd', true],
      ['fgfi', true],
      ['fgd', true],
      ['pfi', true],
      ['head-mimic', true],
      ['rm', true],
      ['ld', true],
      ['hints', true],
    ]);
    for (const m of METHODS) {
      expect(m.citation).toMatch(/(19|20)\d\d/);
      expect(m.needs.length).toBeGreaterThan(0);
    }
    expect(PLANNED_METHODS).toEqual([]);
    expect(getMethod('rm').needs).toEqual(['classLogits', 'boxLogits', 'assignment']);
    expect(getMethod('ld').needs).toEqual(['boxLogits', 'classLogits', 'assignment']);
    expect(getMethod('hints').needs).toEqual(['stage', 'neck', 'headFeature']);
    expect(() => getMethod('xyz' as MethodId)).toThrow(/Unknown method 'xyz'/);
  });

  it('exposes the documented defaults', () => {
    expect(getMethod('fgfi').defaults).toMatchObject({ lambda: 0.01, psi: 0.5, maxOver: 'all-levels' });
    expect(getMethod('fgd').defaults).toEqual({ alpha: 1e-3, beta: 5e-4, gamma: 5e-4, lambda: 5e-6, temp: 0.5 });
    expect(getMethod('pfi').defaults).toEqual({ weight: 1.5 });
    expect(getMethod('head-mimic').defaults).toEqual({ weight: 1 });
    expect(getMethod('kd').defaults).toMatchObject({ temperature: 1, mode: 'bce' });
    expect(getMethod('rm').defaults).toEqual({ weight: 4, tau: 1, scoreSpace: 'probability', minPositives: 2, teacherClassIndex: null });
    expect(getMethod('ld').defaults).toMatchObject({
      temperature: 10,
      mainWeight: 0.25,
      vlrWeight: 0.25,
      alphaVlr: 0.25,
      normalize: 'weight-sum',
      classKd: false,
      classKdWeight: 10,
      classKdTemperature: 2,
    });
  });

  it('creates the connectors each method needs and disposes them', () => {
    const before = tf.memory().numTensors;
    const neck = { teacher: [4, 4], student: [3, 3] };
    const same = { teacher: [4, 4], student: [4, 4] };
    const fgfi = createMethod('fgfi', { channels: { neck } });
    const fgdSame = createMethod('fgd', { channels: { neck: same } });
    const fgdAlign = createMethod('fgd', { channels: { neck } });
    const pfi = createMethod('pfi', { channels: { neck } });
    const mimicSame = createMethod('head-mimic', { channels: { headFeature: same } });
    const mimic = createMethod('head-mimic', { channels: { headFeature: neck } });
    const kd = createMethod('kd');
    const rm = createMethod('rm', { params: { teacherClassIndex: [2, 0] } });
    const ldNoCls = createMethod('ld');
    expect(rm.variables).toHaveLength(0);
    expect(ldNoCls.variables).toHaveLength(0);
    // 3x3 adapter per level (kernel + bias); 2 GcBlocks of 8 variables per level (+ align when channels differ).
    expect(fgfi.variables).toHaveLength(4);
    expect(fgfi.connectors.map((c) => c.name)).toEqual(['fgfi_adapter_0', 'fgfi_adapter_1']);
    expect(fgdSame.variables).toHaveLength(32);
    expect(fgdAlign.variables).toHaveLength(36);
    expect(pfi.variables).toHaveLength(4);
    expect(mimicSame.variables).toHaveLength(0);
    expect(mimic.variables).toHaveLength(4);
    expect(kd.variables).toHaveLength(0);
    expect(() => createMethod('fgfi')).toThrow(/pass ctx.neck/);
    for (const m of [fgfi, fgdSame, fgdAlign, pfi, mimicSame, mimic, kd, rm, ldNoCls]) m.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('combines the detection loss with scaled method losses, keeping every term and map', () => {
    const grid = handGrid([{ stride: 8, height: 1, width: 2 }]);
    const assignments = [handAssignment({ grid, ious: [[1, 0]], assignedGt: [0, -1] })];
    // kd: one class, logits T [0, 0], S [0, 0] -> 2 ln2 / 2 locations = ln2.
    // head mimic: positive at location 0, T [1, 0], S [0, 1] -> 1 − cos = 1, weight 1, scale 2.
    const clsT = tf.zeros([1, 1, 2, 1]) as tf.Tensor4D;
    const headT = tf.tensor4d([1, 0, 1, 0], [1, 1, 2, 2]);
    const headS = tf.tensor4d([0, 1, 1, 0], [1, 1, 2, 2]);
    const det = tf.scalar(1.5);
    const qfl = tf.scalar(1);
    const kd = createMethod('kd');
    const mimic = createMethod('head-mimic', { scale: 2, channels: { headFeature: { teacher: [2], student: [2] } } });
    const before = tf.memory().numTensors;
    const r = tf.tidy(() => {
      const out = runMethods([kd, mimic], { clsT: [clsT], clsS: [clsT], headT: [headT], headS: [headS], assignments }, {
        detection: { loss: det, terms: { qfl } },
        withMaps: true,
      });
      // Only the total and the terms survive the tidy; maps are plain data.
      return { loss: out.loss, terms: out.terms, names: out.maps?.map((m) => m.name) };
    });
    expect(r.loss.dataSync()[0]).toBeCloseTo(1.5 + Math.LN2 + 2 * 1, 6);
    expect(Object.keys(r.terms).sort()).toEqual(['detection', 'detection/qfl', 'head-mimic', 'head-mimic/mimic', 'kd', 'kd/kd', 'kd/divergence'].sort());
    expect(r.terms['head-mimic']?.dataSync()[0]).toBeCloseTo(2, 6);
    expect(r.terms['head-mimic/mimic']?.dataSync()[0]).toBeCloseTo(1, 6);
    expect(r.names).toEqual(['kd/kd', 'head-mimic/cosine']);
    // det and qfl are the caller's: dispose only what combine created, once each.
    for (const t of new Set([r.loss, ...Object.values(r.terms)])) if (t !== det && t !== qfl) t.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(() => combine([{ label: 'a', result: { loss: det, terms: {} } }, { label: 'a', result: { loss: det, terms: {} } }])).toThrow(
      /appears twice/,
    );
    tf.dispose([clsT, headT, headS, det, qfl]);
    kd.dispose();
    mimic.dispose();
  });

  it('runs RM and LD from the step inputs, under their labels, and names a missing input', () => {
    const grid = handGrid([{ stride: 4, height: 2, width: 2 }]);
    const assignments = [
      handAssignment({ grid, ious: [[0.9, 0.3, 0, 0.8]], assignedGt: [0, -1, -1, 0], thresholds: [0.5], gts: [{ box: [0, 0, 8, 8], classIndex: 0 }] }),
    ];
    // Equal teacher and student: both losses are 0, and every term is reported.
    const cls = tf.tensor4d([0.1, -0.2, 0.3, 0.4], [1, 2, 2, 1]);
    const box = tf.tensor4d(Array.from({ length: 32 }, (_, i) => Math.sin(i)), [1, 2, 2, 8]);
    const methods = [createMethod('rm'), createMethod('ld')];
    const r = runMethods(methods, { clsT: [cls], clsS: [cls], boxT: [box], boxS: [box], assignments }, { withMaps: true });
    expect(Object.keys(r.terms).sort()).toEqual(['ld', 'ld/main', 'ld/vlr', 'rm', 'rm/cls', 'rm/loc']);
    expect(r.loss.dataSync()[0]).toBeCloseTo(0, 6);
    expect(r.maps?.map((m) => m.name)).toEqual([
      'rm/rank-cls',
      'rm/rank-loc',
      'ld/main',
      'ld/vlr',
      'ld/edge-left',
      'ld/edge-top',
      'ld/edge-right',
      'ld/edge-bottom',
    ]);
    for (const t of new Set([r.loss, ...Object.values(r.terms)])) t.dispose();
    expect(() => methods[1]?.run({ clsS: [cls], boxT: [box], assignments })).toThrow(/ld needs boxS/);
    expect(() => createMethod('ld', { params: { classKd: true } }).run({ clsS: [cls], boxT: [box], boxS: [box], assignments })).toThrow(
      /ld needs clsT \(classKd is on\)/,
    );
    tf.dispose([cls, box]);
  });

  it('trains every connector of several methods in one gradient step without leaks', () => {
    const grid = handGrid([{ stride: 4, height: 4, width: 4 }]);
    const ious = [Array.from({ length: 16 }, (_, i) => (i === 5 ? 0.8 : i === 6 ? 0.5 : 0.1))];
    const assignedGt = Array.from({ length: 16 }, (_, i) => (i === 5 ? 0 : -1));
    const assignments = [handAssignment({ grid, ious, assignedGt, gts: [{ box: [2, 2, 10, 10], classIndex: 0 }] })];
    const neck = { teacher: [4], student: [3] };
    const methods = [
      createMethod('fgfi', { channels: { neck, seed: 1 }, params: { adapterRelu: false } }),
      createMethod('fgd', { channels: { neck, seed: 2 } }),
      createMethod('pfi', { channels: { neck, seed: 3 } }),
      createMethod('head-mimic', { channels: { headFeature: neck, seed: 4 } }),
      createMethod('kd'),
    ];
    const neckT = tf.randomNormal([1, 4, 4, 4], 0, 1, 'float32', 1) as tf.Tensor4D;
    const clsT = tf.randomNormal([1, 4, 4, 2], 0, 1, 'float32', 2) as tf.Tensor4D;
    const neckS = tf.variable(tf.randomNormal([1, 4, 4, 3], 0, 1, 'float32', 3), true, 'registry_test_neck_s');
    const clsS = tf.variable(tf.randomNormal([1, 4, 4, 2], 0, 1, 'float32', 4), true, 'registry_test_cls_s');
    const before = tf.memory().numTensors;
    const { value, grads } = tf.variableGrads(
      () =>
        runMethods(methods, {
          neckT: [neckT],
          neckS: [neckS as tf.Tensor4D],
          headT: [neckT],
          headS: [neckS as tf.Tensor4D],
          clsT: [clsT],
          clsS: [clsS as tf.Tensor4D],
          assignments,
        }).loss,
    );
    expect(Number.isFinite(value.dataSync()[0])).toBe(true);
    expect(maxAbs(grads[neckS.name] as tf.Tensor)).toBeGreaterThan(0);
    expect(maxAbs(grads[clsS.name] as tf.Tensor)).toBeGreaterThan(0); // from kd only
    for (const m of methods) {
      for (const c of m.connectors) {
        // Every connector is in the gradient list (GcBlock parts behind W2 = 0 get exact zeros at the start).
        for (const v of c.variables) expect(grads[v.name], `${m.id}/${c.name}/${v.name}`).toBeDefined();
      }
    }
    tf.dispose([value, ...Object.values(grads)]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([neckT, clsT, neckS, clsS]);
    methods.forEach((m) => m.dispose());
  });
});
