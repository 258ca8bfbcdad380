import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { strFromU8, unzipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MODELS_DIR } from '../cli/node-lab';
import { METHODS } from '../distill/registry';
import { readManifest, readModelArtifacts } from '../models/load-node';
import { buildModelCard, modelCardMarkdown } from '../provenance/model-card';
import { defaultExperiment } from '../train/config';
import type { ModelHandle } from '../train/session';
import { exportStudentZip } from './export-student';
import { modelFromFiles } from './model-files';
import { buildHandle } from './models';

// The student's export with its model card: the zip holds model-card.json and MODEL_CARD.md, the
// card is also in model.json's metadata, and the lab's loader gives the card back with the model.
describe('the exported student carries its model card (wasm)', () => {
  let student: ModelHandle;
  beforeAll(async () => {
    await tf.setBackend('wasm');
    const { manifest, modelPath } = readManifest(`${MODELS_DIR}/nanodet-student.manifest.json`);
    student = buildHandle('student', manifest, readModelArtifacts(modelPath));
  });
  afterAll(() => student?.graph.dispose());

  it('writes the card the worker builds, with the exported model\'s own facts', async () => {
    const config = defaultExperiment();
    config.methods = [{ id: 'fgd', params: { alpha: 1.6e-3, temp: 0.5 } }];
    const facts: unknown[] = [];
    const out = await exportStudentZip(student, {
      precision: 'float16',
      step: 7,
      card: (model) => {
        facts.push(model);
        return buildModelCard({
          createdAt: '2026-11-28T08:00:00.000Z',
          projectVersion: '0.1.0',
          model,
          teacher: { name: 'NanoDet-g', weightsSha256: 'ab'.repeat(32) },
          student: { manifest: student.manifest, weightsSha256: 'cd'.repeat(32) },
          config,
          methodCatalog: METHODS,
          steps: 7,
          backend: 'wasm',
          data: { source: 'voc-fixture', train: { name: 'train', ids: ['a', 'b'] }, val: { name: 'val', ids: ['c'] } },
        });
      },
    });
    expect(facts).toEqual([{ name: 'NanoDet-g half-depth, VOC (distilled, step 7)', parameters: 2_739_168, macs: 1_763_786_752, inputSize: 416, weightPrecision: 'float16' }]);
    const files = unzipSync(out.zip);
    expect(Object.keys(files).sort()).toEqual(['MODEL_CARD.md', 'model-card.json', 'model.bin', 'model.json', 'model.manifest.json']);
    const card = JSON.parse(strFromU8(files['model-card.json']!));
    expect(card).toEqual(out.card);
    // FGD's paper defaults with the run's alpha; temp was given at its default, so it is no override.
    expect(card.training.methods[0].params).toEqual({ alpha: 1.6e-3, beta: 5e-4, gamma: 5e-4, lambda: 5e-6, temp: 0.5 });
    expect(card.training.methods[0].overrides).toEqual(['alpha']);
    expect(strFromU8(files['MODEL_CARD.md']!)).toBe(modelCardMarkdown(card));
    const loaded = modelFromFiles([{ name: 'student.zip', bytes: out.zip }]);
    expect(loaded.card).toEqual(card);
    // model.json + model.bin alone: the card comes from the metadata.
    const bare = modelFromFiles([
      { name: 'model.json', bytes: files['model.json']! },
      { name: 'model.bin', bytes: files['model.bin']! },
    ]);
    expect(bare.card).toEqual(card);
    expect(bare.manifest.name).toBe('NanoDet-g half-depth, VOC (distilled, step 7)');
  });

  it('an export without a card has none, as before', async () => {
    const out = await exportStudentZip(student, { precision: 'float32', step: 0 });
    expect(Object.keys(unzipSync(out.zip)).sort()).toEqual(['model.bin', 'model.json', 'model.manifest.json']);
    expect(modelFromFiles([{ name: 'student.zip', bytes: out.zip }]).card).toBeUndefined();
  });
});
