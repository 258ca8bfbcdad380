import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeImageBytes } from '../data/decode-node';
import { createImageLoader } from '../data/pipeline';
import { mapVocClasses } from '../data/voc/classes';
import { loadVocDataset, type VocDataset } from '../data/voc/dataset';
import { fromDirectory } from '../data/voc/source-node';
import { vocPixelsToContinuous } from '../data/voc-box';
import type { LabeledDetection } from '../detect/types';
import { loadModelFromArtifacts, type LoadedModel } from '../models/load';
import { readManifest, readModelArtifacts } from '../models/load-node';
import { createGflDetector, evaluateDetector, type DetectorEvalReport, type EvalImage } from './evaluate-detector';

const root = fileURLToPath(new URL('../../', import.meta.url));
const fixtureDir = fileURLToPath(new URL('../../../shared/voc-fixture/VOCdevkit', import.meta.url));

describe('evaluateDetector with NanoDet-g on the fixture val split (wasm backend)', () => {
  let model: LoadedModel;
  let val: VocDataset;
  let images: EvalImage[];
  let vocInCoco: number[];
  let report: DetectorEvalReport;

  beforeAll(async () => {
    await tf.setBackend('wasm');
    const { manifest, modelPath } = readManifest(join(root, 'models/nanodet.manifest.json'));
    model = await loadModelFromArtifacts(manifest, readModelArtifacts(modelPath));
    // Loading with the model's class names puts classIndex in COCO's label space.
    val = await loadVocDataset(await fromDirectory(fixtureDir), { split: 'val', classNames: manifest.classes });
    vocInCoco = Object.values(mapVocClasses(manifest.classes).toModel).filter((c): c is number => c !== undefined);
    images = val.images.map(({ id, objects }) => ({ id, objects }));
    const before = tf.memory().numTensors;
    report = await evaluateDetector(images, createGflDetector(model.runner, model.manifest), {
      classNames: manifest.classes,
      classIndices: vocInCoco,
      loadImage: createImageLoader(val.readImage, decodeImageBytes),
    });
    expect(tf.memory().numTensors).toBe(before);
    console.log(
      `NanoDet-g on fixture val (10 images, 20 VOC classes): mAP11 ${report.map11?.toFixed(4)}, mAP(all-point) ${report.mapAll?.toFixed(4)}, ` +
        `COCO AP ${report.coco.ap?.toFixed(4)} AP50 ${report.coco.ap50?.toFixed(4)} AP75 ${report.coco.ap75?.toFixed(4)}, ` +
        `${report.counts.detections} detections in ${(report.elapsedMs / 1000).toFixed(1)} s`,
    );
  }, 300_000);
  afterAll(() => model?.graph.dispose());

  it('maps all 20 VOC classes onto COCO', () => {
    expect(vocInCoco).toHaveLength(20);
  });

  it('gives a well-formed report with a mAP a strong COCO detector should reach', () => {
    expect(report.counts).toMatchObject({ images: 10, groundTruth: 15, difficult: 4 }); // val: 19 objects, 4 difficult
    for (const m of [report.map11, report.mapAll, report.coco.ap, report.coco.ap50, report.coco.ap75]) {
      expect(typeof m).toBe('number');
      expect(m).toBeGreaterThanOrEqual(0);
      expect(m).toBeLessThanOrEqual(1);
    }
    expect(report.map11).toBeGreaterThan(0.2);
    expect(report.mapAll).toBeGreaterThan(0.2);
    // AP over stricter IoUs cannot exceed AP50.
    expect(report.coco.ap!).toBeLessThanOrEqual(report.coco.ap50! + 1e-12);
    expect(report.coco.ap75!).toBeLessThanOrEqual(report.coco.ap50! + 1e-12);
    expect(report.settings).toEqual({ vocIouThreshold: 0.5, maxDetectionsPerImage: 100, classIndices: vocInCoco });
    expect(report.images.map((i) => i.id)).toEqual(val.images.map((i) => i.id));
    for (const img of report.images) {
      expect(img.detections.length).toBeLessThanOrEqual(100);
      for (const d of img.detections) {
        expect(vocInCoco).toContain(d.classIndex);
        expect(d.score).toBeGreaterThanOrEqual(0.05);
        expect(d.box[0]).toBeGreaterThanOrEqual(0);
        expect(d.box[2]).toBeLessThanOrEqual(img.width);
        expect(d.box[3]).toBeLessThanOrEqual(img.height);
      }
    }
    expect(JSON.parse(JSON.stringify(report))).toEqual(report);
  });

  it('has a per-class entry, named, for every class present in val', () => {
    const present = new Map<number, { gt: number; difficult: number }>();
    for (const img of val.images) {
      for (const o of img.objects) {
        const c = present.get(o.classIndex) ?? { gt: 0, difficult: 0 };
        if (o.difficult) c.difficult += 1;
        else c.gt += 1;
        present.set(o.classIndex, c);
      }
    }
    for (const [classIndex, { gt, difficult }] of present) {
      const entry = report.perClass.find((c) => c.classIndex === classIndex);
      expect(entry, `class ${classIndex}`).toBeDefined();
      expect(entry).toMatchObject({ className: model.manifest.classes[classIndex], numGt: gt, numDifficult: difficult });
      if (gt > 0) expect(entry!.apAll).not.toBeNull();
    }
    expect(report.classesInMap).toBe([...present.values()].filter((c) => c.gt > 0).length);
  });

  it('scores the ground truth itself as a perfect detector (coordinate conventions end to end)', async () => {
    const byId = new Map(val.images.map((img) => [img.id, img]));
    const asDetections = (id: string): LabeledDetection[] =>
      byId.get(id)!.objects.map((o) => ({ box: vocPixelsToContinuous(o.box), classIndex: o.classIndex, score: 1, className: model.manifest.classes[o.classIndex]! }));
    const perfect = await evaluateDetector(
      val.images.map(({ id, width, height, objects }) => ({ id, objects, image: { width, height, channels: 3, data: new Uint8Array(width * height * 3) } })),
      (_, id) => asDetections(id),
      { classNames: model.manifest.classes, classIndices: vocInCoco },
    );
    expect(perfect.mapAll).toBe(1);
    // 11-point AP adds 1/11 eleven times: 1.0000000000000002 in floating point.
    expect(perfect.map11).toBeCloseTo(1, 14);
    // COCO precision is tp / (tp + fp + 2^-52).
    for (const v of [perfect.coco.ap, perfect.coco.ap50, perfect.coco.ap75]) expect(v).toBeCloseTo(1, 12);
    for (const c of perfect.perClass) if (c.numGt > 0) expect(c.apAll).toBe(1);
  });
});
