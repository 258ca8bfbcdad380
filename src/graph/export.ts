/**
 * Writing a TrainableGraph back out as a TensorFlow.js graph model: the same topology, every
 * Const with its current value (trained variables included), float weights as float32 or as
 * float16 (tfjs "float16" quantization). Stock tf.loadGraphModel loads the result.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { TrainableGraph } from './executor';
import { float32ArrayToFloat16 } from './float16';

export type WeightPrecision = 'float32' | 'float16';

export interface ExportOptions {
  precision?: WeightPrecision;
  /** Extra metadata stored in model.json's userDefinedMetadata (e.g. the lab's manifest). */
  metadata?: Record<string, object>;
}

/** The model as in-memory artifacts (model.json fields + one weight buffer). */
export async function exportGraph(graph: TrainableGraph, options: ExportOptions = {}): Promise<tf.io.ModelArtifacts> {
  const precision = options.precision ?? 'float32';
  const specs: tf.io.WeightsManifestEntry[] = [];
  const chunks: Uint8Array[] = [];
  for (const node of graph.topology.node) {
    if (node.op !== 'Const') continue;
    const t = graph.weight(node.name);
    if (!t) throw new Error(`No value for Const node "${node.name}".`);
    const data = await t.data();
    const spec: tf.io.WeightsManifestEntry = { name: node.name, shape: [...t.shape], dtype: t.dtype as 'float32' | 'int32' | 'bool' };
    let bytes: Uint8Array;
    if (t.dtype === 'float32' && precision === 'float16') {
      const half = float32ArrayToFloat16(data as Float32Array);
      bytes = new Uint8Array(half.buffer);
      spec.quantization = { dtype: 'float16' };
    } else if (t.dtype === 'bool') {
      bytes = Uint8Array.from(data as Uint8Array);
    } else {
      const typed = t.dtype === 'int32' ? Int32Array.from(data as Int32Array) : Float32Array.from(data as Float32Array);
      bytes = new Uint8Array(typed.buffer);
    }
    specs.push(spec);
    chunks.push(bytes);
  }
  const total = chunks.reduce((n, c) => n + c.byteLength, 0);
  const weightData = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    weightData.set(c, offset);
    offset += c.byteLength;
  }
  return {
    modelTopology: graph.topology,
    format: 'graph-model',
    generatedBy: 'distill-lab',
    convertedBy: null,
    weightSpecs: specs,
    weightData: weightData.buffer,
    signature: graph.signature,
    userDefinedMetadata: options.metadata,
  };
}

/** model.json text and the weight file's bytes, ready to write to disk or zip for download. */
export function artifactsToFiles(artifacts: tf.io.ModelArtifacts, weightFileName = 'model.bin'): { modelJson: string; weights: Uint8Array } {
  if (!artifacts.weightSpecs || !artifacts.weightData) throw new Error('These artifacts have no weights.');
  const weights = new Uint8Array(tf.io.CompositeArrayBuffer.join(artifacts.weightData));
  const json = {
    format: artifacts.format ?? 'graph-model',
    generatedBy: artifacts.generatedBy,
    convertedBy: artifacts.convertedBy,
    modelTopology: artifacts.modelTopology,
    signature: artifacts.signature,
    userDefinedMetadata: artifacts.userDefinedMetadata,
    weightsManifest: [{ paths: [weightFileName], weights: artifacts.weightSpecs }],
  };
  return { modelJson: JSON.stringify(json), weights };
}
