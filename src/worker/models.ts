/**
 * The lab's two models as trainable graphs: the teacher (constant, graph name 'teacher') and the
 * student (trainable, graph name 'student', so a checkpoint's variable names match any reload of
 * it), built from artifacts fetched from /models/ or dropped by a person; and what the UI shows
 * of each (plain data): parameters, MACs per image at the manifest's input size (the manifest's
 * own `profile` when it has one, else counted with profileGraph), input size, classes, head.
 */
import * as tf from '@tensorflow/tfjs';
import type { GraphRunner } from '../detect/runner';
import { findUnsupportedOps, UnsupportedOpsError } from '../graph/executor';
import { graphFromArtifacts } from '../graph/load';
import type { TfGraphTopology } from '../graph/model-json';
import { profileGraph } from '../graph/profile';
import { parseManifest, type ModelManifest } from '../models/manifest';
import type { ModelHandle } from '../train/session';
import type { ModelCardData } from '../provenance/model-card';

export type ModelRole = 'teacher' | 'student';

/** What the UI shows about a loaded model. */
export interface ModelInfo {
  role: ModelRole;
  name: string;
  description?: string;
  /** Where the files came from: the default's URL, or the dropped files' names. */
  origin: string;
  isDefault: boolean;
  parameters: number;
  /** Multiply-accumulates per image at `inputSize`. */
  macs: number;
  macsFrom: 'manifest' | 'counted';
  inputSize: number;
  layout: 'NCHW' | 'NHWC';
  weightBytes: number;
  classes: string[];
  strides: number[];
  regMax: number;
  derivedFrom?: string;
  /** For a student derived by calibration on photos: how many, at what input side. */
  calibration?: { images: number; inputSize: number };
  /** Manifest file name used in an experiment config. */
  manifestName: string;
  /** How the model was made, when its files carried a model card (an export of this lab or its command line). */
  card?: ModelCardData;
}

/** Builds the graph of a role: the student's weights become variables, the teacher's stay constants. */
export function buildHandle(role: ModelRole, manifest: ModelManifest, artifacts: tf.io.ModelArtifacts): ModelHandle {
  checkModel(manifest, artifacts);
  return { graph: graphFromArtifacts(artifacts, { trainable: role === 'student', name: role }), manifest };
}

/**
 * Checks, before any graph is built, that the executor can run every op (UnsupportedOpsError
 * lists the others) and that the manifest's nodes exist in the model.
 */
export function checkModel(manifest: ModelManifest, artifacts: tf.io.ModelArtifacts): void {
  const topology = artifacts.modelTopology as TfGraphTopology | undefined;
  if (!topology || !Array.isArray((topology as { node?: unknown }).node)) {
    throw new Error('This is not a TensorFlow.js graph model: model.json has no modelTopology.node list (a Layers model cannot be trained here).');
  }
  const unsupported = findUnsupportedOps(topology);
  if (unsupported.size > 0) throw new UnsupportedOpsError(unsupported);
  const names = new Set(topology.node.map((n) => n.name));
  const tapped = [...(manifest.taps?.neck ?? []), ...(manifest.taps?.headFeatures ?? [])];
  const missing = [manifest.input.name, ...manifest.head.outputs, ...tapped].filter((n) => !names.has(n));
  if (missing.length) {
    throw new Error(`The manifest of ${manifest.name} names node(s) the model does not have: ${missing.join(', ')}. Is it the manifest of another model?`);
  }
}

export function describeModel(role: ModelRole, handle: ModelHandle, o: { origin: string; isDefault: boolean; weightBytes: number; manifestName: string }): ModelInfo {
  const { manifest, graph } = handle;
  const size = manifest.input.size;
  let macs = manifest.profile?.macs;
  let macsFrom: ModelInfo['macsFrom'] = 'manifest';
  if (macs === undefined) {
    const shape = manifest.input.layout === 'NCHW' ? [1, 3, size, size] : [1, size, size, 3];
    macs = profileGraph(graph, { [manifest.input.name]: shape }).macs;
    macsFrom = 'counted';
  }
  return {
    role,
    name: manifest.name,
    description: manifest.description,
    origin: o.origin,
    isDefault: o.isDefault,
    parameters: graph.parameterCount(),
    macs,
    macsFrom,
    inputSize: size,
    layout: manifest.input.layout,
    weightBytes: o.weightBytes,
    classes: [...manifest.classes],
    strides: [...manifest.head.strides],
    regMax: manifest.head.regMax,
    derivedFrom: manifest.derivedFrom?.model,
    calibration: manifest.derivedFrom?.calibration ? { images: manifest.derivedFrom.calibration.images, inputSize: manifest.derivedFrom.calibration.inputSize } : undefined,
    manifestName: o.manifestName,
  };
}

/** A GraphRunner over a trainable graph, feeding the manifest's input node. */
export function runnerOf(handle: ModelHandle): GraphRunner {
  return { run: (input, outputs) => handle.graph.execute({ [handle.manifest.input.name]: input }, outputs) };
}

async function fetchJson(url: string, what: string): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw new Error(`Could not fetch the ${what} at ${url}: ${String(error)}`, { cause: error });
  }
  if (!response.ok) throw new Error(`Could not fetch the ${what} at ${url}: HTTP ${response.status}. Run \`npm install\` to fetch the default models into models/.`);
  try {
    return await response.json();
  } catch (error) {
    throw new Error(`The ${what} at ${url} is not valid JSON: ${String(error)}`, { cause: error });
  }
}

/** A default model served by the lab: its manifest URL, then the model.json and weights it names. */
export async function fetchModel(manifestUrl: string, base: string): Promise<{ manifest: ModelManifest; artifacts: tf.io.ModelArtifacts; weightBytes: number }> {
  const absolute = new URL(manifestUrl, base).href;
  const manifest = parseManifest(await fetchJson(absolute, 'model manifest'), manifestUrl);
  const modelUrl = new URL(manifest.model, absolute).href;
  let artifacts: tf.io.ModelArtifacts;
  try {
    artifacts = await tf.io.http(modelUrl).load!();
  } catch (error) {
    throw new Error(`Could not load the graph model ${modelUrl}: ${(error as Error).message}. Run \`npm install\` to fetch the default models.`, { cause: error });
  }
  const weightBytes = artifacts.weightData ? tf.io.CompositeArrayBuffer.join(artifacts.weightData).byteLength : 0;
  return { manifest, artifacts, weightBytes };
}
