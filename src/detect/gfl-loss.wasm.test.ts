import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJpegFile } from '../data/decode-node';
import { loadModelFromArtifacts, type LoadedModel } from '../models/load';
import { readManifest, readModelArtifacts } from '../models/load-node';
import { makeAnchorGrid } from './anchors';
import type { GtObject } from './assignment';
import { assignAtss } from './atss';
import { gflLoss } from './gfl-loss';
import { computeLetterbox, sourceToInput } from './letterbox';
import { preprocessImage } from './preprocess';
import type { Box } from './types';

const root = new URL('../../', import.meta.url).pathname;
const voc = join(root, '../shared/voc-fixture/VOCdevkit/VOC2012');

/** The top-level objects of a VOC annotation: first <name> and <bndbox> of each <object>. */
function readVocObjects(id: string): { name: string; box: Box }[] {
  const xml = readFileSync(join(voc, 'Annotations', `${id}.xml`), 'utf8');
  return xml
    .split('<object>')
    .slice(1)
    .map((chunk) => {
      const name = /<name>\s*([^<]+?)\s*<\/name>/.exec(chunk)?.[1];
      const coord = (tag: string) => Number(new RegExp(`<${tag}>\\s*([\\d.]+)\\s*</${tag}>`).exec(chunk)?.[1]);
      if (!name) throw new Error(`${id}.xml: an object without a name.`);
      return { name, box: [coord('xmin'), coord('ymin'), coord('xmax'), coord('ymax')] as Box };
    });
}

// VOC → COCO indices of the classes these images hold; the "wrong" labels swap person and horse.
const COCO = { person: 0, horse: 17 } as const;
const SWAPPED = { person: COCO.horse, horse: COCO.person } as const;

describe('GFL loss gradients on the wasm backend', () => {
  it('match the cpu backend (wasm lacks some gradient kernels; this loss must not need them)', async () => {
    // Input 64, strides [8, 16], 3 classes, regMax 3 (19 channels); the corner GT of atss.test.ts
    // ([0,0,24,40]) has positives 16, 17, 18. Deterministic head values from a sine.
    const grid = makeAnchorGrid(64, [8, 16], 5);
    const assignment = assignAtss(grid, [{ box: [0, 0, 24, 40], classIndex: 1 }]);
    expect(Array.from(assignment.positives[0]!)).toEqual([16, 17, 18]);
    const shapes: [number, number, number, number][] = [
      [1, 8, 8, 19],
      [1, 4, 4, 19],
    ];
    const data = shapes.map((s) => Float32Array.from({ length: s.reduce((a, b) => a * b, 1) }, (_, i) => 2 * Math.sin(i * 0.37)));
    const gradsOn = async (backend: string) => {
      await tf.setBackend(backend);
      const outs = shapes.map((s, l) => tf.tensor4d(data[l]!, s));
      const lossOf = (x0: tf.Tensor, x1: tf.Tensor) => gflLoss({ outputs: [x0, x1], assignments: [assignment], grid, regMax: 3 }).loss;
      const grads = tf.grads(lossOf)(outs);
      const out = grads.map((g) => Array.from(g.dataSync()));
      tf.dispose([...outs, ...grads]);
      return out.flat();
    };
    const onCpu = await gradsOn('cpu');
    const onWasm = await gradsOn('wasm');
    expect(onWasm.every(Number.isFinite)).toBe(true);
    expect(onCpu.some((v) => v !== 0)).toBe(true);
    onWasm.forEach((v, i) => expect(v).toBeCloseTo(onCpu[i]!, 5));
  });
});

describe('GFL loss of pretrained NanoDet-g on real VOC photos (wasm backend)', () => {
  let model: LoadedModel;
  beforeAll(async () => {
    await tf.setBackend('wasm');
    const { manifest, modelPath } = readManifest(join(root, 'models/nanodet.manifest.json'));
    model = await loadModelFromArtifacts(manifest, readModelArtifacts(modelPath));
  });
  afterAll(() => model?.graph.dispose());

  it('is finite and positive, and its QFL prefers the true classes over swapped ones', () => {
    const { manifest, runner } = model;
    const { strides, regMax, octaveBaseScale, outputs: heads } = manifest.head;
    const size = manifest.input.size;
    const grid = makeAnchorGrid(size, strides, octaveBaseScale);
    // 2007_000027: one person; 2007_000392: a horse and its rider.
    const ids = ['2007_000027', '2007_000392'];
    const perImage = ids.map((id) => {
      const image = decodeJpegFile(join(voc, 'JPEGImages', `${id}.jpg`));
      const lb = computeLetterbox(image.width, image.height, size);
      const objects = readVocObjects(id).map((o) => ({ ...o, box: sourceToInput(lb, o.box) }));
      const input = preprocessImage(image, lb, manifest);
      const outputs = runner.run(input, heads);
      input.dispose();
      return { objects, outputs };
    });
    expect(perImage.map((p) => p.objects.map((o) => o.name))).toEqual([['person'], ['horse', 'person']]);

    // One batch of two images: concatenate each level's [1,H,W,124] outputs along N.
    const batched = strides.map((_, l) => tf.concat(perImage.map((p) => p.outputs[l]!), 0));
    tf.dispose(perImage.flatMap((p) => p.outputs));
    const labelled = (labels: Record<string, number>) =>
      perImage.map((p) => assignAtss(grid, p.objects.map((o): GtObject => ({ box: o.box, classIndex: labels[o.name]! }))));

    const before = tf.memory().numTensors;
    const right = gflLoss({ outputs: batched, assignments: labelled(COCO), grid, regMax });
    const wrong = gflLoss({ outputs: batched, assignments: labelled(SWAPPED), grid, regMax });
    const read = (r: typeof right) => ({
      loss: r.loss.dataSync()[0]!,
      qfl: r.terms.qfl.dataSync()[0]!,
      dfl: r.terms.dfl.dataSync()[0]!,
      giou: r.terms.giou.dataSync()[0]!,
    });
    const good = read(right);
    const bad = read(wrong);
    tf.dispose([right.loss, right.terms.qfl, right.terms.dfl, right.terms.giou, wrong.loss, wrong.terms.qfl, wrong.terms.dfl, wrong.terms.giou]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose(batched);

    expect(right.numPositives).toBeGreaterThan(3);
    expect(right.numPositives).toBe(wrong.numPositives);
    for (const v of Object.values(good)) expect(Number.isFinite(v)).toBe(true);
    expect(good.loss).toBeGreaterThan(0);
    expect(good.loss).toBeCloseTo(good.qfl + 0.25 * good.dfl + 2 * good.giou, 4);
    // The teacher's boxes fit the annotations: mean GIoU well above 0.5, so 1 − GIoU < 0.5.
    expect(good.giou).toBeLessThan(0.5);
    // It agrees with the true labels: swapping the classes makes QFL much larger (measured:
    // 20 positives, QFL 0.84 true vs 2.47 swapped, DFL 0.80, 1 − GIoU 0.15). The box terms
    // depend on boxes and class-agnostic weights only, so they do not change.
    expect(bad.qfl).toBeGreaterThan(2 * good.qfl);
    expect(bad.dfl).toBe(good.dfl);
    expect(bad.giou).toBe(good.giou);
  }, 60_000);
});
