/**
 * The worker's plain modules on the wasm backend with the real teacher, the default student and
 * the VOC fixture: inspection maps of every method, evaluation in the student's label space,
 * export → reload with the same detections, dropped-file checks, and pause/resume/stop of a run.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { strToU8, unzipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_DIR, MODELS_DIR } from '../cli/node-lab';
import { decodeImageBytes } from '../data/decode-node';
import { fromDirectory } from '../data/voc/source-node';
import { detectGfl } from '../detect/nanodet';
import { METHODS } from '../distill/registry';
import type { DistributionPanelMap, GridPanelMap } from '../distill/types';
import { UnsupportedOpsError } from '../graph/executor';
import { graphFromArtifacts } from '../graph/load';
import { readManifest, readModelArtifacts } from '../models/load-node';
import { defaultExperiment } from '../train/config';
import { Optimizer } from '../train/optimizer';
import { createSession, type ModelHandle } from '../train/session';
import { train, type TrainEvent } from '../train/trainer';
import { LabData, limit } from './data';
import { evaluateModel, teacherToStudentClasses } from './evaluation';
import { exportStudentZip } from './export-student';
import { inspectImage } from './inspect';
import { modelFromFiles, type NamedBytes } from './model-files';
import { buildHandle, checkModel, describeModel, runnerOf } from './models';
import { RunControl } from './run-control';

function diskModel(role: 'teacher' | 'student', file: string): ModelHandle {
  const { manifest, modelPath } = readManifest(`${MODELS_DIR}/${file}`);
  return buildHandle(role, manifest, readModelArtifacts(modelPath));
}

describe('the lab worker modules on wasm', () => {
  let teacher: ModelHandle;
  let student: ModelHandle;
  let data: LabData;
  beforeAll(async () => {
    await tf.setBackend('wasm');
    teacher = diskModel('teacher', 'nanodet.manifest.json');
    student = diskModel('student', 'nanodet-student.manifest.json');
    data = await LabData.load(await fromDirectory(FIXTURE_DIR), { train: 'train', val: 'val' }, student.manifest.classes, decodeImageBytes);
  });
  afterAll(() => {
    teacher?.graph.dispose();
    student?.graph.dispose();
  });

  it('describes both models: parameters, MACs (manifest or counted), input size', () => {
    const t = describeModel('teacher', teacher, { origin: 'x', isDefault: true, weightBytes: 0, manifestName: 'nanodet.manifest.json' });
    const s = describeModel('student', student, { origin: 'x', isDefault: true, weightBytes: 0, manifestName: 'nanodet-student.manifest.json' });
    expect(t.parameters).toBe(3_786_068); // the teacher card's "3.79 M"
    expect(t.macsFrom).toBe('counted');
    expect(s.macsFrom).toBe('manifest');
    expect(s.macs).toBe(1_763_786_752);
    // The student is NanoDet-g with half its blocks: fewer parameters and MACs at the same 416 input.
    expect(s.parameters).toBe(2_739_168);
    expect(t.macs).toBeGreaterThan(s.macs);
    expect([t.inputSize, s.inputSize]).toEqual([416, 416]);
    expect(s.classes).toHaveLength(20);
  });

  it('summarises the splits the loader read (fixture: train 20 images, val 10)', () => {
    const info = data.info();
    expect(info.train.summary.imageCount).toBe(20);
    expect(info.val.summary.imageCount).toBe(10);
    expect(info.availableSplits).toEqual(['train', 'trainval', 'val']);
    expect(info.val.summary.objectCount).toBe(19);
    expect(info.val.summary.difficultCount).toBe(4);
    expect(limit(info.train.images, 3).map((i) => i.id)).toEqual(['2007_000027', '2007_000039', '2007_000061']);
  });

  it('inspects an image: real maps of every method at a small input, nothing leaked', async () => {
    const methods = METHODS.map((m) => ({ id: m.id }));
    const session = createSession({ teacher, student, methods, detectionWeight: 1, seed: 1 });
    const image = await data.loader('train')('2007_000061'); // two boats
    const entry = data.train.images.find((i) => i.id === '2007_000061')!;
    const before = tf.memory().numTensors;
    const r = await inspectImage(session, image, entry.id, entry.objects, { inputSize: 128, ldObject: 1, methods, scoreThreshold: 0.05 });
    expect(tf.memory().numTensors).toBe(before);
    session.dispose();
    expect(r.levels.map((l) => l.height)).toEqual([16, 8, 4]); // 128 / 8, 16, 32
    expect(r.objects.map((o) => o.className)).toEqual(['boat', 'boat']);
    expect(r.ldObject).toBe(1);
    const names = new Set(r.maps.map((m) => m.name));
    for (const n of ['fgfi/mask', 'fgd/fg_mask', 'fgd/bg_mask', 'fgd/spatial_attention_T', 'fgd/spatial_attention_S', 'fgd/channel_attention_T', 'pfi/P', 'pfi/F', 'head-mimic/cosine', 'ld/main', 'ld/vlr', 'ld/edge-left', 'rm/rank-cls', 'rm/rank-loc', 'kd/kd']) {
      expect(names, n).toContain(n);
    }
    const grid = (name: string, level: number) => r.maps.find((m) => m.name === name && m.level === level) as GridPanelMap;
    // FGFI's mask is 0/1 on the 16x16 level with some cells on near the boats, not all.
    const mask = grid('fgfi/mask', 0);
    expect(mask.shape).toEqual([1, 16, 16]);
    const on = Array.from(mask.data).filter((v) => v === 1).length;
    expect(on).toBeGreaterThan(0);
    expect(on).toBeLessThan(256);
    // FGD's spatial attention is H·W·softmax: it averages to 1 over the level.
    const att = grid('fgd/spatial_attention_T', 1);
    expect(Array.from(att.data).reduce((a, b) => a + b, 0) / att.data.length).toBeCloseTo(1, 4);
    // Head mimicking's map is a cosine.
    for (const v of grid('head-mimic/cosine', 0).data) expect(Math.abs(v)).toBeLessThanOrEqual(1 + 1e-5);
    // Distributions: each row sums to 1.
    for (const m of r.maps.filter((x): x is DistributionPanelMap => x.kind === 'distribution')) {
      const b = m.shape[1]!;
      const sum = (row: number) => Array.from(m.data.subarray(row * b, (row + 1) * b)).reduce((a, c) => a + c, 0);
      expect(sum(0)).toBeCloseTo(1, 4);
      expect(sum(1)).toBeCloseTo(1, 4);
    }
    // LD's edges are read for the chosen object (GT 1), over regMax + 1 = 11 bins.
    const edge = r.maps.find((m) => m.name === 'ld/edge-left') as DistributionPanelMap;
    expect(edge.gt).toBe(1);
    expect(edge.shape).toEqual([2, 11]);
    for (const t of Object.values(r.terms)) expect(Number.isFinite(t)).toBe(true);
    expect(r.teacher!.length).toBeGreaterThan(0);
    expect(r.teacher!.some((d) => d.className === 'boat')).toBe(true);
  });

  it('maps the COCO teacher onto the VOC student (person 0 → 14) and evaluates both on the same objects', async () => {
    const map = teacherToStudentClasses(teacher.manifest, student.manifest);
    expect(map.get(0)).toBe(14);
    expect(map.size).toBe(20);
    const images = limit(data.val.images, 2);
    const before = tf.memory().numTensors;
    const t = await evaluateModel(teacher, images, data.loader('val'), { inputSize: 320, student: student.manifest });
    expect(tf.memory().numTensors).toBe(before);
    expect(t.counts.images).toBe(2);
    // val's first two images: a train (2 objects) and a bird.
    expect(t.perClass.filter((c) => c.numGt > 0).map((c) => c.className).sort()).toEqual(['bird', 'train']);
    expect(t.mapAll).toBeGreaterThan(0.5);
    expect(t.model).toBe('NanoDet-g');
    expect(t.inputSize).toBe(320);
  });

  it('exports the student as a zip that loads again with the same detections (float32), and close ones (float16)', async () => {
    const image = await data.loader('val')('2007_000068');
    const options = { scoreThreshold: 0.05, iouThreshold: 0.6, maxDetections: 20, inputSize: 160 };
    const original = (await detectGfl(runnerOf(student), student.manifest, image, options)).detections;
    for (const precision of ['float32', 'float16'] as const) {
      const out = await exportStudentZip(student, { precision, step: 3, macs: 1 });
      expect(out.fileName).toBe(`nanodet-g-half-depth-voc-distilled-step3-${precision}.zip`);
      const files = modelFromFiles([{ name: out.fileName, bytes: out.zip }]);
      expect(files.manifest.name).toBe('NanoDet-g half-depth, VOC (distilled, step 3)');
      expect(files.weightBytes).toBe(out.weightBytes);
      const graph = graphFromArtifacts(files.artifacts, { trainable: false, name: `reloaded-${precision}` });
      const reloaded = (await detectGfl(runnerOf({ graph, manifest: files.manifest }), files.manifest, image, options)).detections;
      graph.dispose();
      expect(reloaded.length).toBeGreaterThan(0);
      const tol = precision === 'float32' ? 1e-4 : 2e-2;
      const n = Math.min(5, original.length);
      for (let i = 0; i < n; i++) {
        expect(reloaded[i]!.classIndex).toBe(original[i]!.classIndex);
        expect(Math.abs(reloaded[i]!.score - original[i]!.score)).toBeLessThan(tol);
        for (let k = 0; k < 4; k++) expect(Math.abs(reloaded[i]!.box[k]! - original[i]!.box[k]!)).toBeLessThan(precision === 'float32' ? 1e-2 : 2);
      }
      // model.json + model.bin alone suffice: the manifest is embedded.
      const loose = modelFromFiles([
        { name: 'model.json', bytes: unzipEntry(out.zip, 'model.json') },
        { name: 'model.bin', bytes: unzipEntry(out.zip, 'model.bin') },
      ]);
      expect(loose.manifest.model).toBe('model.json');
    }
  });

  it('says what is wrong with dropped model files', () => {
    const json = (v: unknown): NamedBytes => ({ name: 'model.json', bytes: strToU8(JSON.stringify(v)) });
    const manifest: NamedBytes = { name: 'm.manifest.json', bytes: strToU8(JSON.stringify({ ...student.manifest })) };
    const spec = { name: 'w', shape: [2, 2], dtype: 'float32' };
    const model = { modelTopology: { node: [] }, weightsManifest: [{ paths: ['group1-shard1of1.bin'], weights: [spec] }] };
    expect(() => modelFromFiles([{ name: 'model.json', bytes: strToU8('{"modelTopology": ') }])).toThrow(/model.json is not valid JSON/);
    expect(() => modelFromFiles([json(model)])).toThrow(/came without its manifest/);
    expect(() => modelFromFiles([json(model), manifest])).toThrow(/needs the weight file\(s\) group1-shard1of1.bin/);
    // 2x2 float32 = 16 bytes; 10 were given.
    expect(() => modelFromFiles([json(model), manifest, { name: 'group1-shard1of1.bin', bytes: new Uint8Array(10) }])).toThrow(
      /hold 10 bytes but model.json describes 16: a file is truncated/,
    );
    expect(() => modelFromFiles([{ name: 'broken.zip', bytes: new Uint8Array([1, 2, 3]) }])).toThrow(/broken.zip is not a readable .zip/);
    const ok = modelFromFiles([json(model), manifest, { name: 'group1-shard1of1.bin', bytes: new Uint8Array(16) }]);
    expect(ok.weightBytes).toBe(16);
    const odd = { node: [{ name: 'input_1', op: 'Placeholder' }, { name: 'x', op: 'FancyNewOp', input: ['input_1'] }] };
    let error: unknown;
    try {
      checkModel(student.manifest, { modelTopology: odd });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(UnsupportedOpsError);
    expect((error as Error).message).toMatch(/- FancyNewOp: x/);
    const wrong = { node: [{ name: 'input_1', op: 'Placeholder' }] };
    expect(() => checkModel(student.manifest, { modelTopology: wrong })).toThrow(/names node\(s\) the model does not have: PartitionedCall\/Add_29/);
  });

  it('pauses between steps, resumes, and stops with a checkpoint that keeps what was learnt', async () => {
    const config = {
      ...defaultExperiment(),
      checkpointEvery: 0,
      schedule: { ...defaultExperiment().schedule, epochs: 1, batchSize: 1, inputSize: 64, warmupSteps: 0, flipProbability: 0 },
    };
    const session = createSession({ teacher: null, student, methods: [], detectionWeight: 1 });
    const optimizer = new Optimizer('adam');
    const states: string[] = [];
    const control = new RunControl((s) => states.push(s));
    const events: TrainEvent[] = [];
    let saved = -1;
    const w = student.graph.variables.get('PartitionedCall/split_33')!;
    const initial = w.dataSync().slice(0, 4);
    const run = train({
      session,
      optimizer,
      config,
      images: limit(data.train.images, 4),
      loadImage: data.loader('train'),
      signal: control.signal,
      gate: control.gate,
      saveCheckpoint: async (c) => {
        saved = c.step;
        expect(Object.keys(c.student)).toContain('student/PartitionedCall/split_33');
      },
      onEvent: (e) => {
        events.push(e);
        if (e.type === 'step' && e.step === 1) control.pause();
      },
    });
    while (control.state !== 'paused') await new Promise((r) => setTimeout(r, 20));
    const stepsWhilePaused = events.filter((e) => e.type === 'step').length;
    await new Promise((r) => setTimeout(r, 200));
    expect(events.filter((e) => e.type === 'step').length).toBe(stepsWhilePaused);
    control.resume();
    while (events.filter((e) => e.type === 'step').length < 2) await new Promise((r) => setTimeout(r, 20));
    control.stop();
    const result = await run;
    expect(states.slice(0, 4)).toEqual(['pausing', 'paused', 'running', 'stopping']);
    expect(result.stopped).toBe(true);
    expect(result.step).toBeGreaterThanOrEqual(2);
    expect(result.step).toBeLessThan(4);
    expect(saved).toBe(result.step);
    expect(Array.from(w.dataSync().slice(0, 4))).not.toEqual(Array.from(initial));
    session.dispose();
    optimizer.dispose();
  });
});

function unzipEntry(zip: Uint8Array, name: string): Uint8Array {
  const f = unzipSync(zip)[name];
  if (!f) throw new Error(`no ${name} in the zip`);
  return f;
}
