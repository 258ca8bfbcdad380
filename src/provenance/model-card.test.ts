import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { METHODS } from '../distill/registry';
import { parseManifest, type ModelManifest } from '../models/manifest';
import { defaultExperiment } from '../train/config';
import { buildModelCard, methodsUsed, modelCardMarkdown, parseModelCard, type ModelCardInput } from './model-card';
import { idListSha256, sha256Hex } from './sha256';

const modelsDir = join(import.meta.dirname, '../../models');
const studentManifest = parseManifest(JSON.parse(readFileSync(join(modelsDir, 'nanodet-student.manifest.json'), 'utf8')));

/** The install-time student's manifest as a derivation would leave it: three convs pruned, calibrated on 32 photos. */
const derived: ModelManifest = {
  ...studentManifest,
  name: 'NanoDet-g pruned to 60% MACs, 20 classes',
  derivedFrom: {
    model: 'NanoDet-g',
    prunedChannels: [
      { conv: 'a', kept: 48, channels: 96 },
      { conv: 'b', kept: 96, channels: 96 },
      { conv: 'c', kept: 124, channels: 192 },
    ],
    calibration: { images: 32, inputSize: 416, sha256: 'df94121e0bd68327d1b9c0aa655356b0d977c7207987f1ebabd66a7727bfc4f5', source: '../shared/voc-unlabeled' },
    macsFraction: 0.5955961498654523,
  },
};

function input(): ModelCardInput {
  const config = defaultExperiment();
  config.methods = [{ id: 'kd', params: { temperature: 2 } }, { id: 'ld', scale: 0.5 }];
  config.detectionWeight = 0.5;
  config.schedule = { ...config.schedule, epochs: 1, batchSize: 1, inputSize: 64 };
  return {
    createdAt: '2026-11-28T08:00:00.000Z',
    projectVersion: '0.1.0',
    model: { name: 'NanoDet-g pruned (distilled, step 6)', parameters: 2102724, macs: 1245000000, inputSize: 416, weightPrecision: 'float16' },
    teacher: { name: 'NanoDet-g', weightsSha256: sha256Hex(new Uint8Array([1, 2, 3])) },
    student: { manifest: derived, weightsSha256: null },
    config,
    methodCatalog: METHODS,
    steps: 6,
    backend: 'wasm',
    data: { source: 'voc-fixture', train: { name: 'train', ids: ['2007_000061', '2007_000032', '2007_000039'] }, val: { name: 'val', ids: ['2007_000068'] }, unlabeledPhotos: 12, unlabeledSource: 'voc-unlabeled' },
    evaluation: {
      split: 'val',
      inputSize: 64,
      before: { mapAll: 0.25, map11: 0.27, coco: { ap: 0.1 }, counts: { images: 2 } },
      after: { mapAll: 0.375, map11: 0.4, coco: { ap: 0.125 }, counts: { images: 2 }, step: 6 },
    },
  };
}

describe('the model card', () => {
  it('merges each method\'s paper defaults with the run\'s overrides and names the overrides', () => {
    const used = methodsUsed([{ id: 'kd', params: { temperature: 2, mode: 'bce' } }, { id: 'ld', scale: 0.5 }], METHODS);
    expect(used[0]).toEqual({ id: 'kd', title: 'Soft-label KD', scale: 1, params: { temperature: 2, mode: 'bce', reduction: 'mean', scaleByT2: true, weight: 1, confidencePower: 0 }, overrides: ['temperature'] });
    expect(used[1]!.scale).toBe(0.5);
    expect(used[1]!.params.temperature).toBe(10);
    expect(used[1]!.params.mainWeight).toBe(0.25);
    expect(used[1]!.overrides).toEqual([]);
  });

  it('builds every section from plain data', () => {
    const card = buildModelCard(input());
    expect(card.modelCardVersion).toBe(1);
    expect(card.projectVersion).toBe('0.1.0');
    expect(card.teacher).toEqual({ name: 'NanoDet-g', weightsSha256: '039058c6f2c0cb492c533b0a4d14ef77cc0f78abccced5287d84a1a2011cfb81' });
    expect(card.model.classes).toBe(20);
    expect(card.student.derivation).toEqual({
      from: 'NanoDet-g',
      classes: 20,
      prunedConvs: 2,
      channelsKept: 268,
      channelsTotal: 384,
      removedBlocks: 0,
      replacedBlocks: 0,
      calibration: { images: 32, inputSize: 416, sha256: 'df94121e0bd68327d1b9c0aa655356b0d977c7207987f1ebabd66a7727bfc4f5', source: '../shared/voc-unlabeled' },
      macsFraction: 0.5955961498654523,
    });
    expect(card.training.steps).toBe(6);
    expect(card.training.backend).toBe('wasm');
    expect(card.training.detectionWeight).toBe(0.5);
    expect(card.training.methods.map((m) => m.id)).toEqual(['kd', 'ld']);
    expect(card.training.schedule?.inputSize).toBe(64);
    expect(card.training.schedule?.lr).toBe(1e-4);
    expect(card.data).toEqual({
      source: 'voc-fixture',
      train: { name: 'train', images: 3, idsSha256: idListSha256(['2007_000032', '2007_000039', '2007_000061']) },
      val: { name: 'val', images: 1, idsSha256: sha256Hex('2007_000068') },
      unlabeledPhotos: 12,
      unlabeledSource: 'voc-unlabeled',
    });
    expect(card.evaluation.before).toEqual({ mapAll: 0.25, map11: 0.27, cocoAp: 0.1, images: 2 });
    expect(card.evaluation.after).toEqual({ mapAll: 0.375, map11: 0.4, cocoAp: 0.125, images: 2, step: 6 });
    expect(card.evaluation.teacher).toBeNull();
    // It survives JSON and reads back.
    expect(parseModelCard(JSON.parse(JSON.stringify(card)))).toEqual(card);
    expect(parseModelCard({ modelCardVersion: 2 })).toBeNull();
  });

  it('says a model loaded as is was not derived or trained here', () => {
    const card = buildModelCard({ ...input(), student: { manifest: studentManifest, weightsSha256: null }, config: null, steps: 0, data: null, evaluation: undefined });
    expect(card.student.derivation).toMatchObject({ from: 'NanoDet-g', removedBlocks: studentManifest.derivedFrom!.removedBlocks!.length, calibration: null, channelsTotal: 0 });
    expect(card.training).toEqual({ steps: 0, backend: 'wasm', detectionWeight: null, methods: [], schedule: null, gradientNormsEvery: null });
    expect(card.data).toBeNull();
    expect(modelCardMarkdown(card)).toContain('| methods | none |');
  });

  it('writes the same facts as Markdown', () => {
    const md = modelCardMarkdown(buildModelCard(input()));
    expect(md.split('\n')[0]).toBe('# Model card: NanoDet-g pruned (distilled, step 6)');
    expect(md).toContain('| pruned channels | 2 convs pruned; 268 of 384 channels kept |');
    expect(md).toContain('| calibration photos | 32 at 416², sha256 df94121e0bd68327d1b9c0aa655356b0d977c7207987f1ebabd66a7727bfc4f5 (../shared/voc-unlabeled) |');
    expect(md).toContain('| MACs of the teacher | 59.6% |');
    expect(md).toContain('| methods | kd + ld |');
    expect(md).toContain('| Soft-label KD | temperature=2*, mode="bce", reduction="mean", scaleByT2=true, weight=1, confidencePower=0 |');
    expect(md).toContain('| student before | 25.0 mAP (all-point), 27.0 VOC07, COCO AP 10.0, 2 images |');
    expect(md).toContain('| student after | 37.5 mAP (all-point), 40.0 VOC07, COCO AP 12.5, 2 images, step 6 |');
    expect(md).toContain('| unlabelled photos | 12 (voc-unlabeled) |');
  });
});
