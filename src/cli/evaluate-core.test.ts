import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, describe, expect, it } from 'vitest';
import type { DetectorEvalReport, ReportClass } from '../eval/evaluate-detector';
import { evaluationTable, headSwapLine, manifestFor, parseEvaluateCli, runEvaluation } from './evaluate-core';
import { FIXTURE_DIR, MODELS_DIR } from './node-lab';

const tmp = mkdtempSync(join(tmpdir(), 'evaluate-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const firstLine = (args: string[]) => {
  try {
    parseEvaluateCli(args);
  } catch (e) {
    return (e as Error).message.split('\n')[0];
  }
  return 'no error';
};

describe('parseEvaluateCli', () => {
  it('takes a manifest, or a model.json whose manifest lies beside it', () => {
    const o = parseEvaluateCli(['--model', 'nanodet.manifest.json', '--data', 'voc', '--split', 'val', '--input-size', '320', '--json', join(tmp, 'r.json')]);
    expect(o).toMatchObject({ manifestPath: join(MODELS_DIR, 'nanodet.manifest.json'), dataDir: 'voc', split: 'val', inputSize: 320, jsonPath: join(tmp, 'r.json') });
    expect(parseEvaluateCli(['--model', 'nanodet.manifest.json', '--data', 'voc', '--split', 'val', '--threads', '1']).threads).toBe(1);
    expect(manifestFor(join(MODELS_DIR, 'nanodet.json'))).toBe(join(MODELS_DIR, 'nanodet.manifest.json'));
    expect(manifestFor(join(MODELS_DIR, 'nanodet-student.json'))).toBe(join(MODELS_DIR, 'nanodet-student.manifest.json'));
  });

  it('gives clear usage errors before anything runs', () => {
    expect(firstLine([])).toBe('--model is required (a manifest, or a model.json with its manifest beside it).');
    expect(firstLine(['--model', 'nanodet.manifest.json', '--data', 'voc'])).toBe('--split is required (e.g. val, or test for VOC2007).');
    expect(firstLine(['--model', 'nanodet.manifest.json', '--data', 'voc', '--split', 'val', '--input-size', '300'])).toBe('--input-size must be a multiple of 32, got "300".');
    expect(firstLine(['--model', 'nanodet.manifest.json', '--data', 'voc', '--split', 'val', '--threads', '12'])).toBe('--threads takes a whole number from 1 to 8, or "all", not "12".');
    expect(firstLine(['--model', 'nanodet.manifest.json', '--data', 'voc', '--split', 'val', '--json', '/no/such/dir/r.json'])).toBe('--json /no/such/dir/r.json: the folder /no/such/dir does not exist.');
    const lone = join(tmp, 'model.json');
    writeFileSync(lone, JSON.stringify({ modelTopology: { node: [] }, weightsManifest: [] }));
    expect(firstLine(['--model', lone, '--data', 'voc', '--split', 'val'])).toMatch(/is a model\.json, but no manifest beside it \(manifest\.json or model\.manifest\.json\) names it/);
  });
});

describe('evaluationTable', () => {
  it('lists every class with ground truth and the means, in percent', () => {
    const cls = (className: string, numGt: number, apAll: number | null, ap11: number | null, cocoAp: number | null): ReportClass => ({
      classIndex: 0,
      className,
      numGt,
      numDifficult: 0,
      numDetections: 7,
      ap11,
      apAll,
      cocoAp,
      cocoAp50: null,
      cocoAp75: null,
    });
    const report = {
      map11: 0.5,
      mapAll: 0.25,
      coco: { ap: 0.125, ap50: 0.5, ap75: 0 },
      perClass: [cls('dog', 3, 0.25, 0.5, 0.125), cls('cat', 0, null, null, null)],
      classesInMap: 1,
      counts: { images: 2, groundTruth: 3, difficult: 1, detections: 7, otherClassDetections: 0, cappedDetections: 0 },
    } as unknown as DetectorEvalReport;
    expect(evaluationTable(report).split('\n')).toEqual([
      'class            AP all-point  AP 11-point  COCO AP   objects  detections',
      'dog                      25.0         50.0     12.5         3           7',
      'mAP                      25.0         50.0     12.5         3           7',
      'COCO AP50 50.0, AP75 0.0; 1 classes in the mean; 2 images, 1 difficult objects ignored.',
    ]);
  });
});

describe('runEvaluation', () => {
  it('scores the student on the fixture split and writes the report without per-image boxes', async () => {
    await tf.setBackend('wasm');
    const jsonPath = join(tmp, 'student.json');
    const o = parseEvaluateCli(['--model', join(MODELS_DIR, 'nanodet-student.json'), '--data', FIXTURE_DIR, '--split', 'val', '--input-size', '256', '--json', jsonPath]);
    const { report, inputSize } = await runEvaluation(o);
    expect(inputSize).toBe(256);
    expect(report.counts.images).toBe(10);
    const written = JSON.parse(readFileSync(jsonPath, 'utf8')) as Record<string, unknown>;
    expect(written).toMatchObject({ split: 'val', inputSize: 256, mapAll: report.mapAll, map11: report.map11, coco: report.coco, counts: report.counts });
    expect(written['images']).toBeUndefined();
    await expect(runEvaluation({ ...o, split: 'tset' })).rejects.toThrow('Split "tset" not found');
    // With --teacher: the student's agreement with it on the same images, in the report and the JSON.
    const withTeacher = parseEvaluateCli(['--model', join(MODELS_DIR, 'nanodet-student.json'), '--data', FIXTURE_DIR, '--split', 'val', '--input-size', '128', '--teacher', 'nanodet.manifest.json', '--json', jsonPath]);
    expect(withTeacher.teacherPath).toBe(join(MODELS_DIR, 'nanodet.manifest.json'));
    const { fidelity, headSwap, report: student128 } = await runEvaluation(withTeacher);
    // Where it loses: the teacher's own mAP on the same images, and the student's with either half of its head swapped in.
    const teacherAlone = await runEvaluation(parseEvaluateCli(['--model', 'nanodet.manifest.json', '--data', FIXTURE_DIR, '--split', 'val', '--input-size', '128']));
    expect(headSwap!.mapAll.teacher).toBe(teacherAlone.report.mapAll);
    expect(headSwap!.mapAll.student).toBe(student128.mapAll);
    expect(headSwap!.mapAll.teacherClasses).toBeGreaterThan(student128.mapAll!);
    expect(headSwap!.problems).toEqual({});
    expect(headSwap!.mapAll.teacherNeck).not.toBeNull();
    const scores = (teacherNeck: number | null) => ({ mapAll: { teacher: 0.646, student: 0.417, teacherClasses: 0.592, teacherBoxes: 0.421, teacherNeck }, problems: {} });
    expect(headSwapLine(scores(0.624))).toMatch(/with the teacher's boxes 42\.1; its head on the teacher's neck outputs 62\.4\.$/);
    expect(headSwapLine(scores(null))).toBe(
      "Where it loses to the teacher (mAP all-point, same images): the teacher 64.6, this model 41.7; with the teacher's class scores in its head 59.2, with the teacher's boxes 42.1.",
    );
    expect(fidelity?.imageCount).toBe(10);
    expect(fidelity?.locations).toBe(10 * (16 * 16 + 8 * 8 + 4 * 4));
    expect(JSON.parse(readFileSync(jsonPath, 'utf8')).fidelity).toMatchObject({ teacher: 'NanoDet-g', imageCount: 10, objectLocations: fidelity!.objectLocations });
    expect(JSON.parse(readFileSync(jsonPath, 'utf8')).headSwap).toEqual(headSwap);
  });
});
