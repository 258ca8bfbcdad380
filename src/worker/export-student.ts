/**
 * The distilled student as one .zip: model.json + model.bin (a tfjs graph model that stock
 * tf.loadGraphModel reads; float weights as float32 or float16) and model.manifest.json (the
 * student's manifest pointing at model.json, with its profile). The manifest is also embedded in
 * model.json's metadata, so the lab reloads model.json + model.bin alone. Connectors of the
 * methods are not part of the student and are not exported. With a model card (how the model was
 * made: src/provenance/model-card.ts) the zip also holds model-card.json and MODEL_CARD.md, and
 * model.json's metadata carries the card too.
 */
import { strToU8, zipSync } from 'fflate';
import { artifactsToFiles, exportGraph, type WeightPrecision } from '../graph/export';
import type { ModelManifest } from '../models/manifest';
import type { ModelHandle } from '../train/session';
import { MANIFEST_METADATA_KEY } from './model-files';
import { MODEL_CARD_FILE, MODEL_CARD_MARKDOWN, MODEL_CARD_METADATA_KEY, modelCardMarkdown, type ModelCardData } from '../provenance/model-card';

export interface ExportedStudent {
  zip: Uint8Array;
  fileName: string;
  manifest: ModelManifest;
  weightBytes: number;
  card?: ModelCardData;
}

/** What the exported model is, for its card. */
export interface ExportedModelFacts {
  name: string;
  parameters: number;
  macs: number;
  inputSize: number;
  weightPrecision: WeightPrecision;
}

export async function exportStudentZip(
  student: ModelHandle,
  options: { precision: WeightPrecision; step: number; macs?: number; card?: (model: ExportedModelFacts) => ModelCardData },
): Promise<ExportedStudent> {
  const base = student.manifest.name.replace(/ \(distilled.*\)$/, '');
  const manifest: ModelManifest = {
    ...student.manifest,
    name: `${base} (distilled, step ${options.step})`,
    model: 'model.json',
    profile: { parameters: student.graph.parameterCount(), macs: options.macs ?? student.manifest.profile?.macs ?? 0 },
  };
  if (!manifest.profile?.macs) delete manifest.profile;
  const card = options.card?.({
    name: manifest.name,
    parameters: student.graph.parameterCount(),
    macs: options.macs ?? student.manifest.profile?.macs ?? 0,
    inputSize: manifest.input.size,
    weightPrecision: options.precision,
  });
  const metadata: Record<string, object> = { [MANIFEST_METADATA_KEY]: manifest };
  if (card) metadata[MODEL_CARD_METADATA_KEY] = card;
  const artifacts = await exportGraph(student.graph, { precision: options.precision, metadata });
  const { modelJson, weights } = artifactsToFiles(artifacts, 'model.bin');
  const zip = zipSync(
    {
      'model.json': strToU8(modelJson),
      'model.bin': [weights, { level: 0 }],
      'model.manifest.json': strToU8(JSON.stringify(manifest, null, 2)),
      ...(card ? { [MODEL_CARD_FILE]: strToU8(`${JSON.stringify(card, null, 2)}\n`), [MODEL_CARD_MARKDOWN]: strToU8(modelCardMarkdown(card)) } : {}),
    },
    { level: 6 },
  );
  const slug = base.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
  return { zip, fileName: `${slug}-distilled-step${options.step}-${options.precision}.zip`, manifest, weightBytes: weights.byteLength, card };
}
