/** Building a TrainableGraph from model artifacts: a URL, files a person dropped, or memory. */
import * as tf from '@tensorflow/tfjs-core';
import { TrainableGraph, type GraphOptions } from './executor';
import type { TfGraphTopology } from './model-json';

export function graphFromArtifacts(artifacts: tf.io.ModelArtifacts, options: GraphOptions = {}): TrainableGraph {
  const topology = artifacts.modelTopology as TfGraphTopology | undefined;
  if (!topology || !Array.isArray((topology as { node?: unknown }).node)) {
    throw new Error('This is not a TensorFlow.js graph model: model.json has no modelTopology.node list (a Layers model needs tf.loadLayersModel).');
  }
  if (!artifacts.weightSpecs || !artifacts.weightData) throw new Error('The model has no weights: the weight files are missing.');
  let weights: tf.NamedTensorMap;
  try {
    weights = tf.io.decodeWeights(artifacts.weightData, artifacts.weightSpecs);
  } catch (error) {
    throw new Error(`The weight files do not match model.json (wrong or truncated .bin?): ${(error as Error).message}`, { cause: error });
  }
  try {
    return new TrainableGraph(topology, weights, artifacts.signature as object | undefined, options);
  } catch (error) {
    tf.dispose(Object.values(weights));
    throw error;
  }
}

async function loadArtifacts(handler: tf.io.IOHandler, origin: string): Promise<tf.io.ModelArtifacts> {
  try {
    return await handler.load!();
  } catch (error) {
    throw new Error(`Could not read the model from ${origin}: ${(error as Error).message}`, { cause: error });
  }
}

export async function loadGraphFromUrl(modelJsonUrl: string, options: GraphOptions = {}): Promise<TrainableGraph> {
  return graphFromArtifacts(await loadArtifacts(tf.io.http(modelJsonUrl), modelJsonUrl), options);
}

/** From files a person dropped or picked: one model.json plus every weight file it lists. */
export async function loadGraphFromFiles(files: File[], options: GraphOptions = {}): Promise<TrainableGraph> {
  const json = files.find((f) => f.name.endsWith('.json'));
  if (!json) throw new Error('Drop the model.json together with its weight files (.bin).');
  const weights = files.filter((f) => f !== json);
  return graphFromArtifacts(await loadArtifacts(tf.io.browserFiles([json, ...weights]), json.name), options);
}
