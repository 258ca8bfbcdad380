/** Plain inference with stock tf.GraphModel, behind the same GraphRunner interface as the trainable executor. */
import * as tf from '@tensorflow/tfjs';
import type { ModelManifest } from './manifest';
import type { GraphRunner } from '../detect/runner';

export interface LoadedModel {
  manifest: ModelManifest;
  graph: tf.GraphModel;
  runner: GraphRunner;
  /** Number of float weights of rank >= 1 (the parameters once the graph is made trainable). */
  parameterCount: number;
  weightBytes: number;
}

/** Wraps a tf.GraphModel so it feeds the manifest's input node and returns the named nodes. */
export function graphModelRunner(graph: tf.GraphModel, inputName: string): GraphRunner {
  return {
    run: (input, outputs) => {
      const out = graph.execute({ [inputName]: input }, [...outputs]);
      return Array.isArray(out) ? out : [out];
    },
  };
}

function summarize(manifest: ModelManifest, graph: tf.GraphModel, artifacts?: tf.io.ModelArtifacts): LoadedModel {
  const specs = artifacts?.weightSpecs ?? [];
  const parameterCount = specs
    // Scalars (a pad value, an activation slope) are constants of the graph, not parameters.
    .filter((s) => s.dtype === 'float32' && s.shape.length > 0)
    .reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
  const weightBytes = artifacts?.weightData ? tf.io.CompositeArrayBuffer.join(artifacts.weightData).byteLength : 0;
  return { manifest, graph, runner: graphModelRunner(graph, manifest.input.name), parameterCount, weightBytes };
}

/**
 * Loads a manifest (already parsed) and its graph model, for plain inference with stock
 * tf.GraphModel (the reference path the trainable executor is compared with).
 */
export async function loadModelFromArtifacts(manifest: ModelManifest, artifacts: tf.io.ModelArtifacts): Promise<LoadedModel> {
  const graph = await tf.loadGraphModel(tf.io.fromMemory(artifacts));
  return summarize(manifest, graph, artifacts);
}
