import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { combine, createMethod, getMethod, listMethods, METHODS, PLANNED_METHODS, runMethods, type MethodId } from './registry';
import { handAssignment, handGrid, maxAbs } from './test-support';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('registry', () => {
  it('lists the five methods, then RM and LD as not registered', () => {
    const rows = listMethods();
    expect(rows.map((r) => [r.id, r.registered])).toEqual([
      ['kd', true],
      ['fgfi', true],
      ['fgd', true],
      ['pfi', true],
      ['head-mimic', true],
      ['rm', false],
      ['ld', false],
    ]);
    for (const m of METHODS) {
      expect(m.citation).toMatch(/(19|20)\d\d/);
      expect(m.needs.length).toBeGreaterThan(0);
    }
    expect(PLANNED_METHODS.map((m) => m.status)).toEqual(['not-registered', 'not-registered']);
    expect(() => getMethod('rm' as MethodId)).toThrow(/not registered yet/);
    expect(() => getMethod('xyz' as MethodId)).toThrow(/Unknown method 'xyz'/);
    // @ts-expect-error RM is not a registered method id
    expect(() => createMethod('rm')).toThrow(/not registered/);
  });

  it('exposes the documented defaults', () => {
    expect(getMethod('fgfi').defaults).toMatchObject({ lambda: 0.01, psi: 0.5, maxOver: 'all-levels' });
    expect(getMethod('fgd').defaults).toEqual({ alpha: 1e-3, beta: 5e-4, gamma: 5e-4, lambda: 5e-6, temp: 0.5 });
    expect(getMethod('pfi').defaults).toEqual({ weight: 1.5 });
    expect(getMethod('head-mimic').defaults).toEqual({ weight: 1 });
    expect(getMethod('kd').defaults).toMatchObject({ temperature: 1, mode: 'bce' });
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
    for (const m of [fgfi, fgdSame, fgdAlign, pfi, mimicSame, mimic, kd]) m.dispose();
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
    expect(Object.keys(r.terms).sort()).toEqual(['detection', 'detection/qfl', 'head-mimic', 'head-mimic/mimic', 'kd', 'kd/kd'].sort());
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
