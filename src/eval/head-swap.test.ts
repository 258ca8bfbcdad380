import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../cli/node-lab';
import { teacherChannelsForStudent, type ModelHandle } from '../train/session';
import { headSwapProblem, headSwapRunner, neckSwapProblem, neckSwapRunner } from './head-swap';

const values = (t: tf.Tensor) => Array.from(t.dataSync());

/** The teacher and the install-time student, freed after `f`. */
function withPair(name: string, f: (teacher: ModelHandle, student: ModelHandle) => void): void {
  const teacher = loadModel('nanodet.manifest.json', { trainable: false, name: `${name}_teacher` });
  const student = loadModel('nanodet-student.manifest.json', { trainable: false, name: `${name}_student` });
  try {
    f(teacher, student);
  } finally {
    teacher.graph.dispose();
    student.graph.dispose();
  }
}

describe('swapping head halves with the teacher', () => {
  beforeAll(async () => {
    await tf.setBackend('wasm');
  });

  it('puts the teacher\'s class logits (at the student\'s classes) or its box logits in the student\'s head, and keeps the rest', () => {
    withPair('swap', (teacher, student) => {
      expect(headSwapProblem(student.manifest, teacher.manifest)).toBeUndefined();
      const x = tf.randomNormal([1, 3, 128, 128], 0, 1, 'float32', 5);
      const heads = student.manifest.head.outputs;
      const own = student.graph.execute(x, heads);
      const fromT = teacher.graph.execute(x, teacher.manifest.head.outputs);
      const k = student.manifest.classes.length;
      const kT = teacher.manifest.classes.length;
      const channels = teacherChannelsForStudent(teacher.manifest, student.manifest) as number[];
      expect(channels.slice(0, 3)).toEqual([4, 1, 14]); // aeroplane, bicycle, bird in COCO's order
      const classes = headSwapRunner(student, teacher, 'classes').run(x, heads);
      const boxes = headSwapRunner(student, teacher, 'boxes').run(x, heads);
      for (const level of [0, 2]) {
        const part = (t: tf.Tensor, from: number, size: number) => values(t.slice([0, 0, 0, from], [-1, -1, -1, size]));
        expect(classes[level]!.shape).toEqual(own[level]!.shape);
        expect(part(classes[level]!, 0, k)).toEqual(values(tf.gather(fromT[level]!, channels, 3)));
        expect(part(classes[level]!, k, -1)).toEqual(part(own[level]!, k, -1));
        expect(part(boxes[level]!, 0, k)).toEqual(part(own[level]!, 0, k));
        expect(part(boxes[level]!, k, -1)).toEqual(part(fromT[level]!, kT, -1));
      }
      tf.dispose([x, ...own, ...fromT, ...classes, ...boxes]);
    });
  });

  it('feeds the teacher\'s neck outputs to the model\'s head: fed its own, a model gives its own outputs', () => {
    withPair('neck', (teacher, student) => {
      const x = tf.randomNormal([1, 3, 128, 128], 0, 1, 'float32', 6);
      const heads = teacher.manifest.head.outputs;
      const own = teacher.graph.execute(x, heads);
      const self = neckSwapRunner(teacher, teacher).run(x, heads);
      for (const [i, t] of self.entries()) expect(values(t)).toEqual(values(own[i]!));
      // The structural student keeps the teacher's neck widths: its head runs on the teacher's neck.
      expect(neckSwapProblem(student.manifest, teacher.manifest)).toBeUndefined();
      const fed = neckSwapRunner(student, teacher).run(x, student.manifest.head.outputs);
      const plain = student.graph.execute(x, student.manifest.head.outputs);
      expect(fed.map((t) => t.shape)).toEqual(plain.map((t) => t.shape));
      expect(values(fed[0]!)).not.toEqual(values(plain[0]!));
      tf.dispose([x, ...own, ...self, ...fed, ...plain]);
    });
  });

  it('says why a pair cannot swap', () => {
    const teacher = loadModel('nanodet.manifest.json', { trainable: false, name: 'swap_teacher2' });
    const m = teacher.manifest;
    teacher.graph.dispose();
    expect(headSwapProblem({ ...m, head: { ...m.head, regMax: 7 } }, m)).toBe('reg_max differs (10 and 7)');
    expect(headSwapProblem({ ...m, head: { ...m.head, strides: [8, 16] } }, m)).toBe('the strides differ (8,16,32 and 8,16)');
    expect(headSwapProblem({ ...m, classes: [...m.classes.slice(0, 2), 'unicorn'] }, m)).toBe('the teacher has no class unicorn');
    expect(headSwapProblem({ ...m, preprocess: { ...m.preprocess, channelOrder: 'RGB' } }, m)).toBe('the two models preprocess their input differently');
    expect(neckSwapProblem({ ...m, taps: { ...m.taps!, neck: [] } }, m)).toBe("the model's manifest names no neck outputs (taps.neck)");
    expect(neckSwapProblem({ ...m, taps: { ...m.taps!, neck: m.taps!.neck!.slice(1) } }, m)).toBe('the neck has 3 levels in the teacher and 2 in the model');
  });
});
