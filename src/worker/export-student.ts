/**
 * The distilled student as one .zip: model.json + model.bin (a tfjs graph model that stock
 * tf.loadGraphModel reads; float weights as float32 or float16) and model.manifest.json (the
 * student's manifest pointing at model.json, with its profile). The manifest is also embedded in
 * model.json's metadata, so the lab reloads model.json + model.bin alone. Connectors of the
 * methods are not part of the student and are not exported.
 */
import { strToU8, zipSync } from 'fflate';
import { artifactsToFiles, exportGraph, type WeightPrecision } from '../graph/export';
import type { ModelManifest } from '../models/manifest';
import type { ModelHandle } from '../train/session';
import { MANIFEST_METADATA_KEY } from './model-files';

export interface ExportedStudent {
  zip: Uint8Array;
  fileName: string;
  manifest: ModelManifest;
  weightBytes: number;
}

export async function exportStudentZip(
  student: ModelHandle,
  options: { precision: WeightPrecision; step: number; macs?: number },
): Promise<ExportedStudent> {
  const base = student.manifest.name.replace(/ \(distilled.*\)$/, '');
  const manifest: ModelManifest = {
    ...student.manifest,
    name: `${base} (distilled, step ${options.step})`,
    model: 'model.json',
    profile: { parameters: student.graph.parameterCount(), macs: options.macs ?? student.manifest.profile?.macs ?? 0 },
  };
  if (!manifest.profile?.macs) delete manifest.profile;
  const artifacts = await exportGraph(student.graph, { precision: options.precision, metadata: { [MANIFEST_METADATA_KEY]: manifest } });
  const { modelJson, weights } = artifactsToFiles(artifacts, 'model.bin');
  const zip = zipSync(
    {
      'model.json': strToU8(modelJson),
      'model.bin': [weights, { level: 0 }],
      'model.manifest.json': strToU8(JSON.stringify(manifest, null, 2)),
    },
    { level: 6 },
  );
  const slug = base.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
  return { zip, fileName: `${slug}-distilled-step${options.step}-${options.precision}.zip`, manifest, weightBytes: weights.byteLength };
}
