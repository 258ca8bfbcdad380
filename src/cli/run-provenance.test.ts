import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseModelCard } from '../provenance/model-card';
import { readRunFile } from '../provenance/run-file';
import { parseJsonLines } from '../provenance/run-log';
import { idListSha256 } from '../provenance/sha256';
import { defaultExperiment } from '../train/config';
import { modelFromFiles } from '../worker/model-files';
import { FIXTURE_DIR } from './node-lab';
import { graphFromArtifacts } from '../graph/load';
import { readModelArtifacts } from '../models/load-node';
import { unpackCheckpoint } from '../train/checkpoint';
import { AVERAGE_PREFIX } from '../train/optimizer';
import { evaluateModel, modelWeightsSha256, runExperiment } from './run';
import { readManifest } from '../models/load-node';
import { resolveManifest } from './node-lab';
import { disposeParts, partsFromArtifacts } from '../graph/surgery';
import { analyzeChannels } from '../derive/channels';

/** A VOC folder with two training images and one validation image of the fixture. */
function tinyVoc(root: string): string {
  const src = join(FIXTURE_DIR, 'VOCdevkit/VOC2012');
  const dst = join(root, 'tiny-voc/VOCdevkit/VOC2012');
  for (const d of ['Annotations', 'JPEGImages', 'ImageSets/Main']) mkdirSync(join(dst, d), { recursive: true });
  const train = ['2007_000039', '2007_000027'];
  const val = ['2007_000068'];
  for (const id of [...train, ...val]) {
    copyFileSync(join(src, 'Annotations', `${id}.xml`), join(dst, 'Annotations', `${id}.xml`));
    copyFileSync(join(src, 'JPEGImages', `${id}.jpg`), join(dst, 'JPEGImages', `${id}.jpg`));
  }
  writeFileSync(join(dst, 'ImageSets/Main/train.txt'), `${train.join('\n')}\n`);
  writeFileSync(join(dst, 'ImageSets/Main/val.txt'), `${val.join('\n')}\n`);
  return join(root, 'tiny-voc');
}

/**
 * The default student's first `count` prunable convolutions, each with its filter's name and
 * values (what a pruning run fades), read from the installed model.
 */
function defaultStudentUnits(count: number): { producer: string; channels: number; filter: string; values: Float32Array }[] {
  const { modelPath } = readManifest(resolveManifest('nanodet-student.manifest.json'));
  const artifacts = readModelArtifacts(modelPath);
  const full = graphFromArtifacts(artifacts);
  const parts = partsFromArtifacts(artifacts);
  try {
    return analyzeChannels(parts, full.nodeShapes(), full.outputs)
      .units.slice(0, count)
      .map((u) => {
        const filter = parts.topology.node.find((n) => n.name === u.producer)!.input![1]!;
        return { producer: u.producer, channels: u.channels, filter, values: parts.weights[filter]!.dataSync() as Float32Array };
      });
  } finally {
    full.dispose();
    disposeParts(parts);
  }
}

/** Column `c` of a [..., cout] filter stored row-major: every entry of output channel c. */
const column = (w: ArrayLike<number>, cout: number, c: number) => Array.from({ length: w.length / cout }, (_, r) => w[r * cout + c]!);

describe('the command line writes a model card and a run record (wasm)', () => {
  let root: string;
  beforeAll(async () => {
    await tf.setBackend('wasm');
    root = mkdtempSync(join(tmpdir(), 'distill-card-'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('two steps of KD at 64²: model-card.json and MODEL_CARD.md beside the student, run.json the lab imports', async () => {
    const data = tinyVoc(root);
    const out = join(root, 'out');
    const config = defaultExperiment();
    config.methods = [{ id: 'kd', params: { temperature: 2 } }];
    config.schedule = { ...config.schedule, epochs: 1, batchSize: 1, inputSize: 64, warmupSteps: 0 };
    config.checkpointEvery = 1;
    config.gradientNormsEvery = 0;
    const status: string[] = [];
    const result = await runExperiment({ config, dataDir: data, outDir: out, evalEvery: 1, onStatus: (m) => status.push(m) });
    expect(result.steps).toBe(2);
    expect(readdirSync(join(out, 'student')).sort()).toEqual(['MODEL_CARD.md', 'manifest.json', 'model-card.json', 'model.bin', 'model.json']);

    const card = parseModelCard(JSON.parse(readFileSync(join(out, 'student/model-card.json'), 'utf8')))!;
    expect(card.projectVersion).toBe(JSON.parse(readFileSync(join(import.meta.dirname, '../../package.json'), 'utf8')).version);
    expect(card.teacher).toEqual({ name: 'NanoDet-g', weightsSha256: modelWeightsSha256('nanodet.manifest.json') });
    expect(card.teacher.weightsSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(card.student.name).toBe('NanoDet-g half-depth, VOC');
    expect(card.student.derivation?.removedBlocks).toBeGreaterThan(0);
    expect(card.training.steps).toBe(2);
    expect(card.training.backend).toBe('wasm');
    expect(card.training.methods).toEqual([{ id: 'kd', title: 'Soft-label KD', scale: 1, params: { temperature: 2, mode: 'bce', reduction: 'mean', scaleByT2: true, weight: 1, confidencePower: 0 }, overrides: ['temperature'] }]);
    expect(card.training.schedule?.inputSize).toBe(64);
    expect(card.data).toEqual({
      source: 'tiny-voc',
      train: { name: 'train', images: 2, idsSha256: idListSha256(['2007_000027', '2007_000039']) },
      val: { name: 'val', images: 1, idsSha256: idListSha256(['2007_000068']) },
      unlabeledPhotos: 0,
    });
    const evalJson = JSON.parse(readFileSync(join(out, 'eval.json'), 'utf8'));
    // A run with a teacher measures the student's agreement with it before and after, on the evaluation split.
    expect(result.fidelity?.before?.imageCount).toBe(1);
    expect(result.fidelity?.after.locations).toBe(8 * 8 + 4 * 4 + 2 * 2);
    expect(evalJson.fidelity.after).toEqual(result.fidelity!.after);
    expect(card.evaluation.before?.mapAll).toBe(evalJson.before.mapAll);
    expect(card.evaluation.after).toMatchObject({ mapAll: evalJson.after.mapAll, images: 1, step: 2 });
    const md = readFileSync(join(out, 'student/MODEL_CARD.md'), 'utf8');
    expect(md).toContain('| methods | kd |');
    expect(md).toContain(`| teacher weights sha256 | ${card.teacher.weightsSha256} |`.replace('teacher weights', 'weights'));

    // The lab reads the student folder with its card.
    const files = readdirSync(join(out, 'student')).map((name) => ({ name, bytes: new Uint8Array(readFileSync(join(out, 'student', name))) }));
    expect(modelFromFiles(files).card).toEqual(card);
    // model.json alone carries the card too.
    expect(modelFromFiles(files.filter((f) => f.name !== 'model-card.json')).card).toEqual(card);

    // run.json: the same rows as log.jsonl, the evaluations, the checkpoint; the lab's reader accepts it.
    const { record } = readRunFile('run.json', new Uint8Array(readFileSync(join(out, 'run.json'))));
    expect(record.origin).toBe('cli');
    expect(record.status).toBe('finished');
    expect(record.steps).toBe(2);
    expect(record.log).toEqual(parseJsonLines(readFileSync(join(out, 'log.jsonl'), 'utf8')));
    expect(record.log.map((r) => r.step)).toEqual([1, 2]);
    expect(Object.keys(record.log[0]!.terms).sort()).toEqual(['detection', 'detection/dfl', 'detection/giou', 'detection/qfl', 'kd', 'kd/divergence', 'kd/kd']);
    expect(record.log[1]!.loss).toBeCloseTo(record.log[1]!.terms.detection! + record.log[1]!.terms.kd!, 4);
    // Evaluated before, after step 1 (--eval-every 1: between the steps), and after the last step.
    expect(record.evaluations.map((e) => [e.target, e.step])).toEqual([
      ['before', 0],
      ['after', 1],
      ['after', 2],
    ]);
    expect(status.filter((m) => /^step \d+: mAP/.test(m))).toEqual([`step 1: mAP ${(100 * record.evaluations[1]!.mapAll!).toFixed(1)} on val`]);
    expect(record.checkpoint).toMatchObject({ step: 2, bytes: readFileSync(join(out, 'checkpoint.dlc')).byteLength });
    expect(record.methods[0]!.params.temperature).toBe(2);
    expect(record.teacher.weightsSha256).toBe(card.teacher.weightsSha256);
  }, 240_000);

  it('with a weight average, evaluates and exports the average and checkpoints the raw weights beside it', async () => {
    const data = tinyVoc(root);
    const out = join(root, 'out-ema');
    const config = defaultExperiment();
    config.schedule = { ...config.schedule, epochs: 1, batchSize: 1, inputSize: 64, warmupSteps: 0, lr: 1e-3, ema: 0.5 };
    config.gradientNormsEvery = 0;
    const status: string[] = [];
    await runExperiment({ config, dataDir: data, outDir: out, onStatus: (m) => status.push(m) });
    expect(status).toContain("the student's weights are now their moving average (decay 0.5)");
    const checkpoint = unpackCheckpoint(new Uint8Array(readFileSync(join(out, 'checkpoint.dlc'))));
    const exported = graphFromArtifacts(readModelArtifacts(join(out, 'student/model.json')));
    try {
      const name = 'PartitionedCall/split_33';
      const key = Object.keys(checkpoint.student).find((k) => k.endsWith(name))!;
      const raw = checkpoint.student[key]!.values;
      const average = checkpoint.optimizer.slots[`${AVERAGE_PREFIX}${key}`]![0]!.values;
      const weights = exported.weight(name)!.dataSync();
      expect(Array.from(weights)).toEqual(Array.from(average));
      expect(Array.from(weights)).not.toEqual(Array.from(raw));
    } finally {
      exported.dispose();
    }
  }, 240_000);

  it('prunes while training: the plan\'s channels fade to zero in the checkpoint, and the written student is cut to the plan', async () => {
    const data = tinyVoc(root);
    const out = join(root, 'out-prune');
    const units = defaultStudentUnits(2);
    const plan = Object.fromEntries(units.map((u) => [u.producer, Array.from({ length: u.channels / 2 }, (_, i) => 2 * i + 1)]));
    const config = defaultExperiment();
    config.methods = [{ id: 'hints' }];
    config.prune = { keep: plan, fadeSteps: 1 };
    config.schedule = { ...config.schedule, epochs: 1, batchSize: 1, inputSize: 64, warmupSteps: 0 };
    config.gradientNormsEvery = 0;
    const status: string[] = [];
    const result = await runExperiment({ config, dataDir: data, outDir: out, onStatus: (m) => status.push(m) });
    expect(status).toContain('the pruned channels of 2 convolutions fade to zero over 1 steps; the student is then cut to the plan');
    // The raw weights after the last step: the faded output channels are exactly zero, the kept ones are not.
    const checkpoint = unpackCheckpoint(new Uint8Array(readFileSync(join(out, 'checkpoint.dlc'))));
    expect(checkpoint.config.prune).toEqual(config.prune);
    for (const u of units) {
      const key = Object.keys(checkpoint.student).find((k) => k.endsWith(`/${u.filter}`))!;
      const w = checkpoint.student[key]!.values;
      expect(column(w, u.channels, 0).every((v) => v === 0)).toBe(true);
      expect(column(w, u.channels, 1).some((v) => v !== 0)).toBe(true);
    }
    // The student written out has the plan's widths, records them, and scores what the run reported.
    const written = JSON.parse(readFileSync(join(out, 'student/manifest.json'), 'utf8'));
    expect(written.derivedFrom.prunedChannels).toEqual(units.map((u) => ({ conv: u.producer, kept: u.channels / 2, channels: u.channels })));
    const cut = graphFromArtifacts(readModelArtifacts(join(out, 'student/model.json')));
    try {
      for (const u of units) expect(cut.weight(u.filter)!.shape[3]).toBe(u.channels / 2);
      const again = await evaluateModel({ graph: cut, manifest: written }, data, 'val', 64);
      expect(again.mapAll).toBe(result.after.mapAll);
    } finally {
      cut.dispose();
    }
  }, 240_000);

  it('a run with a teacher stopped after its first step still measures the agreement after it and writes its student', async () => {
    const data = tinyVoc(root);
    const out = join(root, 'out-stop-teacher');
    const config = defaultExperiment();
    config.methods = [{ id: 'kd' }];
    config.schedule = { ...config.schedule, epochs: 1, batchSize: 1, inputSize: 64, warmupSteps: 0 };
    config.gradientNormsEvery = 0;
    const controller = new AbortController();
    const run = await runExperiment({ config, dataDir: data, outDir: out, signal: controller.signal, onEvent: (e) => e.type === 'step' && controller.abort() });
    expect(run).toMatchObject({ steps: 1, stopped: true });
    expect(run.fidelity?.after).toBeDefined();
    expect(existsSync(join(out, 'student/manifest.json'))).toBe(true);
    expect(existsSync(join(out, 'checkpoint.dlc'))).toBe(true);
  }, 240_000);

  it('a pruning run stopped mid-fade resumes the fade from its checkpoint and cuts the student at the end', async () => {
    const data = tinyVoc(root);
    const out = join(root, 'out-prune-resume');
    const [unit] = defaultStudentUnits(1);
    const { filter, values: start } = unit!;
    const config = defaultExperiment();
    config.prune = { keep: { [unit!.producer]: [0] }, fadeSteps: 2 };
    config.schedule = { ...config.schedule, epochs: 1, batchSize: 1, inputSize: 64, warmupSteps: 0, lr: 1e-6 };
    config.gradientNormsEvery = 0;
    // Stopped after the first of two steps: the faded channels stand at half their values (a half cosine at 1 of 2).
    const controller = new AbortController();
    const first = await runExperiment({ config, dataDir: data, outDir: out, signal: controller.signal, onEvent: (e) => e.type === 'step' && controller.abort() });
    expect(first).toMatchObject({ steps: 1, stopped: true });
    const checkpoint = unpackCheckpoint(new Uint8Array(readFileSync(join(out, 'checkpoint.dlc'))));
    const key = Object.keys(checkpoint.student).find((k) => k.endsWith(`/${filter}`))!;
    const cout = unit!.channels;
    const mid = checkpoint.student[key]!.values;
    column(mid, cout, 1).forEach((v, r) => expect(v).toBeCloseTo(0.5 * column(start, cout, 1)[r]!, 6));
    // Resumed with its own config, it finishes the fade and writes the cut student.
    const second = await runExperiment({ config: checkpoint.config, dataDir: data, outDir: out, resume: checkpoint });
    expect(second).toMatchObject({ steps: 2, stopped: false });
    const end = unpackCheckpoint(new Uint8Array(readFileSync(join(out, 'checkpoint.dlc'))));
    expect(column(end.student[key]!.values, cout, 1).every((v) => v === 0)).toBe(true);
    const written = JSON.parse(readFileSync(join(out, 'student/manifest.json'), 'utf8'));
    expect(written.derivedFrom.prunedChannels).toEqual([{ conv: unit!.producer, kept: 1, channels: cout }]);
  }, 240_000);
});

