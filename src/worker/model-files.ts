/**
 * A model a person dropped, as files: a tfjs graph model (model.json + every weight file it
 * lists) and the lab's manifest JSON, loose or inside a .zip (the lab's own export is such a zip).
 * Files are told apart by content, not by name: a JSON with `modelTopology` is the model.json, a
 * JSON with `manifestVersion` is the manifest. A model.json exported by the lab carries its
 * manifest in `userDefinedMetadata.distillLabManifest`, so model.json + weights suffice for it.
 * Plain bytes in, plain artifacts out: runs in the worker and in Node tests alike.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { unzipSync } from 'fflate';
import { parseManifest, type ModelManifest } from '../models/manifest';
import { MODEL_CARD_METADATA_KEY, parseModelCard, type ModelCardData } from '../provenance/model-card';

export interface NamedBytes {
  name: string;
  bytes: Uint8Array;
}

export interface ModelFiles {
  manifest: ModelManifest;
  artifacts: tf.io.ModelArtifacts;
  /** Total size of the weight files. */
  weightBytes: number;
  /** Names the files in messages and in the UI. */
  origin: string;
  /** How the model was made, when the files carry a model card (the lab's and the command line's exports do). */
  card?: ModelCardData;
}

/** Key of the manifest inside an exported model.json's userDefinedMetadata. */
export const MANIFEST_METADATA_KEY = 'distillLabManifest';

const baseName = (path: string) => path.split(/[\\/]/).pop() ?? path;

/** Unpacks every .zip among the files (one level), keeping the other files as they are. */
export function expandArchives(files: readonly NamedBytes[]): NamedBytes[] {
  const out: NamedBytes[] = [];
  for (const f of files) {
    if (!/\.zip$/i.test(f.name)) {
      out.push({ name: baseName(f.name), bytes: f.bytes });
      continue;
    }
    let entries: Record<string, Uint8Array>;
    try {
      entries = unzipSync(f.bytes);
    } catch (error) {
      throw new Error(`${f.name} is not a readable .zip archive (${(error as Error).message}). Drop the complete file.`, { cause: error });
    }
    for (const [path, bytes] of Object.entries(entries)) {
      if (path.endsWith('/') || path.includes('__MACOSX') || baseName(path).startsWith('._')) continue;
      out.push({ name: baseName(path), bytes });
    }
  }
  return out;
}

interface ModelJson {
  modelTopology?: unknown;
  weightsManifest?: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
  signature?: object;
  userDefinedMetadata?: Record<string, unknown>;
}

const BYTES_PER_VALUE: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, float16: 2, uint16: 2 };

/** Bytes the weight specs need: quantized weights take their storage type's size. */
export function expectedWeightBytes(specs: readonly tf.io.WeightsManifestEntry[]): number {
  return specs.reduce((n, s) => {
    const size = s.shape.reduce((a, b) => a * b, 1);
    const per = BYTES_PER_VALUE[s.quantization?.dtype ?? s.dtype] ?? 4;
    return n + size * per;
  }, 0);
}

function parseJson(f: NamedBytes): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(f.bytes));
  } catch (error) {
    throw new Error(`${f.name} is not valid JSON (${(error as Error).message}): the file is broken or not a model file.`, { cause: error });
  }
}

/** Finds model.json, its weights and the manifest among dropped files; one error lists what is wrong. */
export function modelFromFiles(dropped: readonly NamedBytes[]): ModelFiles {
  const files = expandArchives(dropped);
  if (files.length === 0) throw new Error('No files were given. Drop model.json, its weight files (.bin) and the manifest JSON, or the lab\'s exported .zip.');
  const jsons = files.filter((f) => /\.json$/i.test(f.name)).map((f) => ({ file: f, value: parseJson(f) as Record<string, unknown> | null }));
  const models = jsons.filter((j) => j.value && typeof j.value === 'object' && 'modelTopology' in j.value);
  const manifests = jsons.filter((j) => j.value && typeof j.value === 'object' && 'manifestVersion' in j.value);
  const cards = jsons.map((j) => parseModelCard(j.value)).filter((c): c is ModelCardData => c !== null);
  if (models.length === 0) {
    throw new Error(`None of ${files.map((f) => f.name).join(', ')} is a TensorFlow.js model.json (a JSON with "modelTopology"). Drop the model.json with its weight files.`);
  }
  if (models.length > 1) throw new Error(`Several model.json files were dropped (${models.map((m) => m.file.name).join(', ')}): drop one model at a time.`);
  const model = models[0]!;
  const json = model.value as ModelJson;
  const meta = json.userDefinedMetadata?.[MANIFEST_METADATA_KEY];
  let manifest: ModelManifest;
  if (manifests.length > 1) throw new Error(`Several manifests were dropped (${manifests.map((m) => m.file.name).join(', ')}): drop one.`);
  if (manifests[0]) manifest = parseManifest(manifests[0].value, manifests[0].file.name);
  else if (meta) manifest = parseManifest(meta, `${model.file.name} (embedded manifest)`);
  else {
    throw new Error(
      `${model.file.name} came without its manifest: also drop the manifest JSON (input node and size, preprocessing, classes, head outputs; see models/README.md).`,
    );
  }
  if (!Array.isArray(json.weightsManifest)) throw new Error(`${model.file.name} has no "weightsManifest": it does not say which weight files belong to it.`);
  const byName = new Map(files.map((f) => [f.name, f]));
  const paths = json.weightsManifest.flatMap((g) => g.paths.map(baseName));
  const missing = paths.filter((p) => !byName.has(p));
  if (missing.length) throw new Error(`${model.file.name} needs the weight file(s) ${missing.join(', ')}, which were not dropped with it.`);
  const specs = json.weightsManifest.flatMap((g) => g.weights);
  const parts = paths.map((p) => byName.get(p)!.bytes);
  const total = parts.reduce((n, b) => n + b.byteLength, 0);
  const expected = expectedWeightBytes(specs);
  if (total !== expected) {
    throw new Error(
      `The weight files ${paths.join(', ')} hold ${total} bytes but ${model.file.name} describes ${expected}: a file is truncated, or belongs to another model.`,
    );
  }
  const card = cards[0] ?? parseModelCard(json.userDefinedMetadata?.[MODEL_CARD_METADATA_KEY]) ?? undefined;
  const weightData = new Uint8Array(total);
  let offset = 0;
  for (const b of parts) {
    weightData.set(b, offset);
    offset += b.byteLength;
  }
  return {
    manifest,
    artifacts: {
      modelTopology: json.modelTopology as object,
      weightSpecs: specs,
      weightData: weightData.buffer,
      format: json.format,
      generatedBy: json.generatedBy,
      convertedBy: json.convertedBy ?? null,
      signature: json.signature,
      userDefinedMetadata: json.userDefinedMetadata as Record<string, object> | undefined,
    },
    weightBytes: total,
    ...(card ? { card } : {}),
    origin: [model.file.name, ...paths, manifests[0]?.file.name].filter(Boolean).join(' + '),
  };
}
