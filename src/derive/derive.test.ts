import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadPhotos } from '../data/photos-node';
import { graphFromArtifacts } from '../graph/load';
import { readManifest, readModelArtifacts } from '../models/load-node';
import { deriveStudent } from './derive';

const models = new URL('../../models/', import.meta.url).pathname;
const unlabeled = new URL('../../../shared/voc-unlabeled/JPEGImages', import.meta.url).pathname;

describe('deriving a student from NanoDet-g', () => {
  beforeAll(async () => {
    await tf.setBackend('wasm');
  });

  it('meets the MAC budget, is the same twice, and loads in stock tf.loadGraphModel', { timeout: 600_000 }, async () => {
    const { manifest, modelPath } = readManifest(join(models, 'nanodet.manifest.json'));
    const { images } = loadPhotos(unlabeled, 8);
    // Small calibration so the test stays short; the fits are as large as at full size.
    const options = { macs: 0.6, calibrationSize: 96, rowsPerImage: 24, batchSize: 4, minImages: 8 };
    const first = await deriveStudent(readModelArtifacts(modelPath), manifest, images, options);
    const second = await deriveStudent(readModelArtifacts(modelPath), manifest, images, options);
    const r = first.report;
    expect(r.student.macs).toBeLessThanOrEqual(0.6 * r.teacher.macs);
    expect(r.student.macs).toBeGreaterThan(0.5 * r.teacher.macs);
    expect(first.manifest.classes).toHaveLength(20);
    expect(first.manifest.profile).toEqual({ parameters: r.student.parameters, macs: r.student.macs });
    expect(first.manifest.derivedFrom?.calibration).toMatchObject({ images: 8, inputSize: 96 });
    // Every refit lowered its layer's error on the calibration rows.
    expect(r.refit.length).toBeGreaterThan(20);
    for (const layer of r.refit) expect(layer.errorAfter).toBeLessThanOrEqual(layer.errorBefore + 1e-9);
    // Deterministic: identical weight bytes.
    const bytes = (a: tf.io.ModelArtifacts) => new Uint8Array(a.weightData as ArrayBuffer);
    expect(Buffer.from(bytes(first.artifacts)).equals(Buffer.from(bytes(second.artifacts)))).toBe(true);
    // The record lists the channels each pruned conv kept; given back as a plan (derive-student --plan), it gives the same student.
    const plan = new Map(r.units.filter((u) => u.keep).map((u) => [u.producer, u.keep!]));
    expect(plan.size).toBe(r.units.filter((u) => u.kept < u.channels).length);
    const planned = await deriveStudent(readModelArtifacts(modelPath), manifest, images, { ...options, keep: plan });
    expect(Buffer.from(bytes(planned.artifacts)).equals(Buffer.from(bytes(first.artifacts)))).toBe(true);

    // Stock tf.loadGraphModel runs it and agrees with the trainable executor.
    const stock = await tf.loadGraphModel(tf.io.fromMemory(first.artifacts));
    const ours = graphFromArtifacts(first.artifacts, { trainable: false });
    const x = tf.randomNormal([1, 3, 416, 416], 0, 1, 'float32', 3);
    const heads = manifest.head.outputs;
    const a = stock.execute(x, heads) as tf.Tensor[];
    const b = ours.execute(x, heads);
    expect(a.map((t) => t.shape)).toEqual([
      [1, 52, 52, 64],
      [1, 26, 26, 64],
      [1, 13, 13, 64],
    ]);
    for (let i = 0; i < 3; i++) expect(tf.max(tf.abs(tf.sub(a[i]!, b[i]!))).dataSync()[0]).toBeLessThan(1e-3);
    tf.dispose([x, ...a, ...b]);
    stock.dispose();
    ours.dispose();

    // The record of kept tap channels: the neck sums stay whole, the head features are pruned,
    // and the kept positions are the teacher's channels: before any refit, the conv that makes each
    // head feature is the teacher's conv with exactly those output channels (its input, the neck, is whole).
    const tapChannels = first.manifest.derivedFrom?.tapChannels ?? {};
    for (const n of manifest.taps!.neck!) expect(tapChannels[n]).toBeUndefined();
    const headTaps = manifest.taps!.headFeatures!;
    for (const n of headTaps) expect(tapChannels[n]!.length).toBeLessThan(128);
    const teacherArtifacts = readModelArtifacts(modelPath);
    const unfitted = await deriveStudent(teacherArtifacts, manifest, images, { ...options, refit: 'none' });
    const nodes = (teacherArtifacts.modelTopology as { node: { name: string; op: string; input?: string[] }[] }).node;
    const byName = new Map(nodes.map((n) => [n.name, n]));
    const filterOf = (tap: string) => {
      let node = byName.get(tap)!;
      while (node.op !== 'Conv2D') node = byName.get(node.input![0]!.split(':')[0]!)!;
      return node.input![1]!.split(':')[0]!;
    };
    const weightsT = tf.io.decodeWeights(teacherArtifacts.weightData as ArrayBuffer, teacherArtifacts.weightSpecs!);
    const weightsS = tf.io.decodeWeights(unfitted.artifacts.weightData as ArrayBuffer, unfitted.artifacts.weightSpecs!);
    for (const n of headTaps) {
      const kept = unfitted.manifest.derivedFrom!.tapChannels![n]!;
      const filter = filterOf(n);
      expect(weightsS[filter]!.shape[3]).toBe(kept.length);
      expect(tf.max(tf.abs(tf.sub(tf.gather(weightsT[filter]!, kept, 3), weightsS[filter]!))).dataSync()[0]).toBe(0);
    }
    tf.dispose([...Object.values(weightsT), ...Object.values(weightsS)]);
  });

  it('refuses too few photos and an unreachable budget with a message that says what to do', async () => {
    const { manifest, modelPath } = readManifest(join(models, 'nanodet.manifest.json'));
    const { images } = loadPhotos(unlabeled, 8);
    await expect(deriveStudent(readModelArtifacts(modelPath), manifest, images.slice(0, 3), { macs: 0.6 })).rejects.toThrow(/at least 8 calibration photos; got 3/);
    await expect(deriveStudent(readModelArtifacts(modelPath), manifest, images, { macs: 0.01, calibrationSize: 64 })).rejects.toThrow(/cannot be reached by pruning channels: the smallest this graph allows is \d+%/);
    await expect(deriveStudent(readModelArtifacts(modelPath), manifest, images, { macs: 0.6, calibrationSize: 64, keep: new Map([['conv_404', [0]]]) })).rejects.toThrow('The channel plan names "conv_404", which is not a prunable convolution of this teacher.');
  });
});
