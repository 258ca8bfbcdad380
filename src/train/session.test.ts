import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { graphFromArtifacts } from '../graph/load';
import { readManifest, readModelArtifacts } from '../models/load-node';
import { createSession, derivedTapChannels } from './session';

const models = new URL('../../models/', import.meta.url).pathname;

describe('createSession', () => {
  it('refuses, before any step, a student whose outputs pass nodes without a gradient, and names them', async () => {
    await tf.setBackend('wasm');
    const { manifest } = readManifest(join(models, 'nanodet-student.manifest.json'));
    // CenterNet read as a "student" whose head output is its detections (top-k, gather, comparisons).
    const graph = graphFromArtifacts(readModelArtifacts(join(models, 'centernet.json')));
    const student = { graph, manifest: { ...manifest, taps: undefined, head: { ...manifest.head, outputs: ['tower_0/detections'] } } };
    expect(() => createSession({ teacher: null, student, methods: [], detectionWeight: 1 })).toThrow(
      /through 3 node\(s\)[^]*- tower_0\/Equal \(Equal\)[^]*- tower_0\/TopKV2 \(TopKV2\)[^]*- tower_0\/BatchGather\/GatherV2 \(GatherV2\)/,
    );
    graph.dispose();
  });

  it('reads a derived student\'s kept tap channels from its record, and refuses a record that does not fit', async () => {
    await tf.setBackend('wasm');
    const t = readManifest(join(models, 'nanodet.manifest.json'));
    const s = readManifest(join(models, 'nanodet-student.manifest.json'));
    const teacher = { graph: graphFromArtifacts(readModelArtifacts(t.modelPath)), manifest: t.manifest };
    const studentGraph = graphFromArtifacts(readModelArtifacts(s.modelPath));
    const head = t.manifest.taps!.headFeatures![0]!;
    const derived = (tapChannels: Record<string, number[]>, model = t.manifest.name) => ({
      graph: studentGraph,
      manifest: { ...s.manifest, derivedFrom: { model, tapChannels } },
    });
    // The default student keeps all 128 head channels: a record naming all of them fits.
    const all = Array.from({ length: 128 }, (_, i) => i);
    expect(derivedTapChannels(teacher, derived({ [head]: all }))).toEqual({ [head]: all });
    // Another teacher's record is not used.
    expect(derivedTapChannels(teacher, derived({ [head]: all }, 'another model'))).toBeUndefined();
    expect(() => derivedTapChannels(teacher, derived({ [head]: all.slice(0, 120) }))).toThrow(/does not fit tap ".*LeakyRelu_151" \(128 student channels, 120 recorded of the teacher's 128\)\. Derive the student again/);
    expect(() => derivedTapChannels(teacher, derived({ [head]: [...all.slice(1), 128] }))).toThrow(/does not fit tap/);
    expect(() => derivedTapChannels(teacher, derived({ 'no/such/node': [0] }))).toThrow(/names tap "no\/such\/node", which NanoDet-g does not tap/);
    teacher.graph.dispose();
    studentGraph.dispose();
  });
});
