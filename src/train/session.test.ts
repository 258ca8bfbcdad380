import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { graphFromArtifacts } from '../graph/load';
import { readManifest, readModelArtifacts } from '../models/load-node';
import { createSession } from './session';

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
});
