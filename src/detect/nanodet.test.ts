import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJpegFile } from '../data/decode-node';
import { loadModelFromArtifacts, type LoadedModel } from '../models/load';
import { readManifest, readModelArtifacts } from '../models/load-node';
import { DEFAULT_DETECT_OPTIONS, detectGfl } from './nanodet';

const root = new URL('../../', import.meta.url).pathname;
const fixture = join(root, '../shared/voc-fixture/VOCdevkit/VOC2012/JPEGImages');

describe('NanoDet-g on real VOC photos (wasm backend)', () => {
  let model: LoadedModel;
  beforeAll(async () => {
    await tf.setBackend('wasm');
    const { manifest, modelPath } = readManifest(join(root, 'models/nanodet.manifest.json'));
    model = await loadModelFromArtifacts(manifest, readModelArtifacts(modelPath));
  });
  afterAll(() => model?.graph.dispose());

  it('has the parameter count of NanoDet-g', () => {
    expect(model.parameterCount).toBe(3_786_068);
  });

  it('finds the person in 2007_000027 with a box that overlaps the annotation', async () => {
    const image = decodeJpegFile(join(fixture, '2007_000027.jpg'));
    const before = tf.memory().numTensors;
    const { detections } = await detectGfl(model.runner, model.manifest, image, DEFAULT_DETECT_OPTIONS);
    expect(tf.memory().numTensors).toBe(before);
    const person = detections.find((d) => d.className === 'person');
    expect(person, JSON.stringify(detections)).toBeDefined();
    // Annotation: person xmin 174 ymin 101 xmax 349 ymax 351
    const [x1, y1, x2, y2] = person!.box;
    const inter = Math.max(0, Math.min(x2, 349) - Math.max(x1, 174)) * Math.max(0, Math.min(y2, 351) - Math.max(y1, 101));
    const union = (x2 - x1) * (y2 - y1) + 175 * 250 - inter;
    expect(inter / union).toBeGreaterThan(0.5);
  });

  it('finds the cars and bus in 2007_000663', async () => {
    const image = decodeJpegFile(join(fixture, '2007_000663.jpg'));
    const { detections } = await detectGfl(model.runner, model.manifest, image, DEFAULT_DETECT_OPTIONS);
    const names = new Set(detections.map((d) => d.className));
    expect(names.has('bus') || names.has('car')).toBe(true);
  });
});
