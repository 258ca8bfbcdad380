import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_DIR, loadModel, loadSplit } from '../cli/node-lab';
import { iou } from '../detect/box';
import { iterateBatches, type AnnotatedImage } from '../data/pipeline';
import { defaultExperiment } from './config';
import { disposeTaps, readDetector } from './detector-taps';
import { Optimizer } from './optimizer';
import { pseudoGroundTruth } from './pseudo-labels';
import { createSession, type ModelHandle } from './session';
import { train, type TrainEvent } from './trainer';
import { withPseudoLabels } from './step';

describe('pseudo ground truth from the teacher', () => {
  beforeAll(async () => {
    await tf.setBackend('wasm');
  });

  it('decodes a hand-made head output: one box above the threshold, clipped to the input', async () => {
    // One level, stride 8, 2x2 cells, 2 classes, reg_max 1 (2 bins per edge): 2 + 8 channels.
    const cells: number[][] = [];
    for (let i = 0; i < 4; i++) {
      const classes = i === 0 ? [-5, 2] : [-5, -5];
      // Bin logits [0, 9]: the expected bin is ~1, so each edge is ~1 stride = 8 px from the centre.
      const edges = [0, 9, 0, 9, 0, 9, 0, 9];
      cells.push([...classes, ...edges]);
    }
    const raw = tf.tensor4d(cells.flat(), [1, 2, 2, 10]);
    const [boxes] = await pseudoGroundTruth([raw], [true], { strides: [8], regMax: 1, inputSize: 16, scoreThreshold: 0.4 });
    raw.dispose();
    expect(boxes).toHaveLength(1);
    expect(boxes![0]!.classIndex).toBe(1);
    // Centre (4, 4), edges 8·p(bin 1) = 8·e⁹/(1+e⁹) ≈ 7.999: [-4, -4, 12, 12] clipped to [0, 0, 12, 12].
    const d = (8 * Math.exp(9)) / (1 + Math.exp(9));
    expect(boxes![0]!.box[0]).toBe(0);
    expect(boxes![0]!.box[2]).toBeCloseTo(4 + d, 6);
    expect(boxes![0]!.box[3]).toBeCloseTo(4 + d, 6);
    // An image not asked for gets nothing.
    const none = await pseudoGroundTruth([tf.zeros([2, 2, 2, 10]) as tf.Tensor4D], [false, true], { strides: [8], regMax: 1, inputSize: 16, scoreThreshold: 0.6 });
    expect(none).toEqual([undefined, []]);
  });

  describe('with NanoDet-g on fixture photos whose annotations are withheld', () => {
    let teacher: ModelHandle;
    let student: ModelHandle;
    let split: Awaited<ReturnType<typeof loadSplit>>;
    beforeAll(async () => {
      teacher = loadModel('nanodet.manifest.json', { trainable: false, name: 'teacher' });
      student = loadModel('nanodet-student.manifest.json', { trainable: true, name: 'student' });
      split = await loadSplit(FIXTURE_DIR, 'train', student.manifest.classes);
    });
    afterAll(() => {
      teacher?.graph.dispose();
      student?.graph.dispose();
    });

    it("finds the annotated objects again: each pseudo box of 2007_000027 matches its person (IoU > 0.5)", async () => {
      const session = createSession({ teacher, student, methods: [], detectionWeight: 1 });
      const annotated = split.dataset.images.find((i) => i.id === '2007_000027')!;
      const images: AnnotatedImage[] = [annotated, { ...annotated, objects: [], unlabeled: true }];
      const batches = iterateBatches(images, split.loadImage, student.manifest, { batchSize: 2, seed: 1, shuffle: false, inputSize: 320 });
      const { value: batch } = await batches.next();
      const taps = readDetector(teacher.graph, teacher.manifest, batch!.input, session.teacherRead);
      const { batch: labelled, pseudoBoxes } = await withPseudoLabels(session, batch!, taps, 0.4);
      disposeTaps(taps);
      batch!.input.dispose();
      const truth = labelled.gts[0]!;
      const pseudo = labelled.gts[1]!;
      expect(truth).toHaveLength(1);
      expect(pseudoBoxes).toBe(pseudo.length);
      expect(pseudo.length).toBeGreaterThanOrEqual(1);
      const person = student.manifest.classes.indexOf('person');
      expect(pseudo.every((p) => p.classIndex === person)).toBe(true);
      expect(iou(pseudo[0]!.box, truth[0]!.box)).toBeGreaterThan(0.5);
      session.dispose();
    });

    it('trains on a mix of annotated images and unlabelled photos; the steps count the teacher’s boxes', { timeout: 120_000 }, async () => {
      const session = createSession({ teacher, student, methods: [{ id: 'kd' }], detectionWeight: 1 });
      const optimizer = new Optimizer('adam', {});
      const images: AnnotatedImage[] = [...split.dataset.images.slice(0, 2), ...split.dataset.images.slice(2, 4).map((i) => ({ ...i, objects: [], unlabeled: true }))];
      const events: TrainEvent[] = [];
      const cfg = { ...defaultExperiment(), schedule: { ...defaultExperiment().schedule, epochs: 1, batchSize: 4, inputSize: 320, warmupSteps: 0, flipProbability: 0 } };
      await train({ session, optimizer, config: cfg, images, loadImage: split.loadImage, onEvent: (e) => events.push(e) });
      const step = events.find((e): e is Extract<TrainEvent, { type: 'step' }> => e.type === 'step')!;
      expect(Number.isFinite(step.loss)).toBe(true);
      expect(step.pseudoBoxes).toBeGreaterThan(0);
      session.dispose();
      optimizer.dispose();
    });
  });
});
