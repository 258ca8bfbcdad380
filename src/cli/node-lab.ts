/**
 * Node-side loading for the command line, scripts and tests: models from models/ (or any path)
 * and VOC splits from a folder on disk, in the forms the training core takes.
 */
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { decodeImageBytes } from '../data/decode-node';
import { createImageLoader, type ImageLoader } from '../data/pipeline';
import { fromDirectory } from '../data/voc/source-node';
import { loadVocDataset, type VocDataset } from '../data/voc/dataset';
import { graphFromArtifacts } from '../graph/load';
import { readManifest, readModelArtifacts } from '../models/load-node';
import type { ModelHandle } from '../train/session';

export const REPO_ROOT = resolve(dirname(new URL(import.meta.url).pathname), '../..');
export const MODELS_DIR = join(REPO_ROOT, 'models');
export const FIXTURE_DIR = resolve(REPO_ROOT, '../shared/voc-fixture');

/** A manifest path, or a bare manifest name looked up in models/. */
export function resolveManifest(nameOrPath: string): string {
  return isAbsolute(nameOrPath) || nameOrPath.includes('/') ? resolve(nameOrPath) : join(MODELS_DIR, nameOrPath);
}

export function loadModel(nameOrPath: string, options: { trainable: boolean; name: string }): ModelHandle {
  const { manifest, modelPath } = readManifest(resolveManifest(nameOrPath));
  return { manifest, graph: graphFromArtifacts(readModelArtifacts(modelPath), options) };
}

export async function loadSplit(folder: string, split: string, classNames: readonly string[]): Promise<{ dataset: VocDataset; loadImage: ImageLoader }> {
  const dataset = await loadVocDataset(await fromDirectory(folder), { split, classNames });
  return { dataset, loadImage: createImageLoader((id) => dataset.readImage(id), decodeImageBytes) };
}
