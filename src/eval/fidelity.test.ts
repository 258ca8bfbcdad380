import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadModel, loadSplit } from '../cli/node-lab';
import { iterateBatches } from '../data/pipeline';
import { fidelityLine, fidelityReport, fidelitySums, measureFidelity, poolFidelity } from './fidelity';

const ln3 = Math.log(3);

describe('fidelity of a student to its teacher', () => {
  beforeAll(async () => {
    await tf.setBackend('wasm');
  });

  it('splits agreement between the teacher\'s object locations and the rest (hand-computed)', () => {
    // Location 0: teacher [0, ln3] -> p [0.5, 0.75], an object of class 1; student [ln3, 0] -> p [0.75, 0.5].
    //   divergence = (ln4 − 0.5 ln3 + ln2) − (ln2 + ln4 − 0.75 ln3) = 0.25 ln3.
    // Location 1: teacher and student [−ln3, −ln3] -> p 0.25: background, divergence 0.
    const zT = tf.tensor4d([0, ln3, -ln3, -ln3], [1, 1, 2, 2]);
    const zS = tf.tensor4d([ln3, 0, -ln3, -ln3], [1, 1, 2, 2]);
    const before = tf.memory().numTensors;
    const s = fidelitySums([zT], [zS], 0.3);
    expect(tf.memory().numTensors).toBe(before);
    expect(s.locations).toBe(2);
    expect(s.objectLocations).toBe(1);
    expect(s.teacherScore).toBeCloseTo(0.75, 6);
    expect(s.studentScore).toBeCloseTo(0.5, 6);
    expect(s.sameTopClass).toBe(0);
    expect(s.objectDivergence).toBeCloseTo(0.25 * ln3, 5);
    expect(s.backgroundDivergence).toBeCloseTo(0, 6);
    const r = fidelityReport(s, 1, 0.3);
    expect(r).toMatchObject({ imageCount: 1, objectLocations: 1, teacherScore: 0.75, sameTopClass: 0 });
    expect(fidelityLine(r)).toBe('at the 1 locations where the teacher sees an object (score > 0.3): teacher score 0.750, student 0.500, same top class 0.0%, divergence 0.2747; elsewhere divergence 0.00000');
    // No object location: the per-object means are n/a, not NaN.
    expect(fidelityReport(fidelitySums([zT], [zS], 0.9), 1, 0.9).teacherScore).toBeNull();
    expect(() => fidelitySums([zT], [zS, zS], 0.3)).toThrow(/1 levels and the student 2/);
    tf.dispose([zT, zS]);
  });

  it('pools reports as one pass over all their images', () => {
    // A: 2 object locations of 10 (teacher 0.8, student 0.4, same class 1/2, divergence 0.6; background 0.01).
    const a = fidelityReport({ locations: 10, objectLocations: 2, teacherScore: 1.6, studentScore: 0.8, sameTopClass: 1, objectDivergence: 1.2, backgroundDivergence: 0.08 }, 1, 0.3);
    // B: 6 of 10 (teacher 0.4, student 0.2, same class 3/6, divergence 0.2; background 0.04).
    const b = fidelityReport({ locations: 10, objectLocations: 6, teacherScore: 2.4, studentScore: 1.2, sameTopClass: 3, objectDivergence: 1.2, backgroundDivergence: 0.16 }, 2, 0.3);
    const p = poolFidelity([a, b]);
    // Per object location over both: teacher 4.0 / 8, student 2.0 / 8, same 4 / 8, divergence 2.4 / 8; background 0.24 / 12.
    expect(p.imageCount).toBe(3);
    expect([p.locations, p.objectLocations]).toEqual([20, 8]);
    expect(p.teacherScore).toBeCloseTo(0.5, 12);
    expect(p.studentScore).toBeCloseTo(0.25, 12);
    expect(p.sameTopClass).toBeCloseTo(0.5, 12);
    expect(p.objectDivergence).toBeCloseTo(0.3, 12);
    expect(p.backgroundDivergence).toBeCloseTo(0.02, 12);
    expect(() => poolFidelity([a, { ...b, threshold: 0.5 }])).toThrow('different thresholds');
  });

  it('reads a teacher in the student\'s classes: a model against itself agrees fully', async () => {
    const teacher = loadModel('nanodet.manifest.json', { trainable: false, name: 'fidelity_teacher' });
    try {
      const { dataset, loadImage } = await loadSplit(new URL('../../../shared/voc-fixture', import.meta.url).pathname, 'val', teacher.manifest.classes);
      const batches = () => iterateBatches(dataset.images.slice(0, 2), loadImage, teacher.manifest, { batchSize: 2, seed: 1, shuffle: false, inputSize: 160 });
      const count = tf.memory().numTensors;
      const self = await measureFidelity(teacher, teacher, batches());
      expect(tf.memory().numTensors).toBe(count);
      expect(self.imageCount).toBe(2);
      expect(self.locations).toBe(2 * (20 * 20 + 10 * 10 + 5 * 5));
      expect(self.objectLocations).toBeGreaterThan(0);
      expect(self.sameTopClass).toBe(1);
      expect(self.studentScore).toBeCloseTo(self.teacherScore!, 6);
      expect(Math.abs(self.objectDivergence!)).toBeLessThan(1e-4);
      // A 20-class VOC student against the 80-class teacher: the teacher is read at the VOC classes.
      const student = loadModel('nanodet-student.manifest.json', { trainable: false, name: 'fidelity_student' });
      try {
        const r = await measureFidelity(teacher, student, batches());
        expect(r.objectLocations).toBeGreaterThan(0);
        expect(r.objectLocations).toBeLessThanOrEqual(self.objectLocations);
        expect(r.sameTopClass).toBeLessThan(1);
        expect(r.objectDivergence).toBeGreaterThan(0.01);
      } finally {
        student.graph.dispose();
      }
    } finally {
      teacher.graph.dispose();
    }
  }, 60_000);
});
