import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { parseManifest, type ModelManifest } from './manifest';

/** Reads a tfjs graph model (model.json and every weight file it lists) from disk into memory. */
export function readModelArtifacts(modelJsonPath: string): tf.io.ModelArtifacts {
  let json: {
    modelTopology?: unknown;
    weightsManifest?: tf.io.WeightsManifestConfig;
    format?: string;
    generatedBy?: string;
    convertedBy?: string;
    signature?: object;
    userDefinedMetadata?: Record<string, unknown>;
  };
  try {
    json = JSON.parse(readFileSync(modelJsonPath, 'utf8'));
  } catch (error) {
    throw new Error(`Could not read model file ${modelJsonPath}: ${(error as Error).message}`, { cause: error });
  }
  if (!json.modelTopology || !Array.isArray(json.weightsManifest)) {
    throw new Error(`${modelJsonPath} is not a TensorFlow.js model.json: it lacks modelTopology or weightsManifest.`);
  }
  const weightSpecs = json.weightsManifest.flatMap((group) => group.weights);
  const buffers = json.weightsManifest.flatMap((group) =>
    group.paths.map((p) => {
      const bytes = readFileSync(join(dirname(modelJsonPath), p));
      return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    }),
  );
  return {
    modelTopology: json.modelTopology as object,
    weightSpecs,
    weightData: buffers.length === 1 ? buffers[0]! : buffers,
    format: json.format,
    generatedBy: json.generatedBy,
    convertedBy: json.convertedBy ?? null,
    signature: json.signature,
    userDefinedMetadata: json.userDefinedMetadata as Record<string, object> | undefined,
  };
}

/** Reads and checks a manifest from disk, and the path of the model.json it names. */
export function readManifest(manifestPath: string): { manifest: ModelManifest; modelPath: string } {
  const manifest = parseManifest(JSON.parse(readFileSync(manifestPath, 'utf8')), manifestPath);
  return { manifest, modelPath: join(dirname(manifestPath), manifest.model) };
}
