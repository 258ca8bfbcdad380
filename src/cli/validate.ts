/**
 * Checks a command makes before it writes anything: a run that fails on a mistyped split must
 * not have emptied the log of the run folder it was pointed at. Each check throws an Error
 * whose message says what is wrong and how to fix it.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { fromDirectory } from '../data/voc/source-node';
import { listVocSplits } from '../data/voc/dataset';
import { parseFoldSplit } from '../data/voc/folds';
import { readManifest } from '../models/load-node';
import { resolveManifest } from './node-lab';

/** The data folder is readable, holds one VOC folder, and has every named split. */
export async function checkSplits(dataDir: string, splits: readonly string[]): Promise<void> {
  if (!dataDir) throw new Error('No data folder given (--data).');
  const available = await listVocSplits(await fromDirectory(dataDir));
  // A fold of a split ("trainval/fold-1-of-3") needs its base split; parseFoldSplit rejects a fold that cannot exist.
  const missing = [...new Set(splits)].filter((s) => !available.includes(parseFoldSplit(s)?.base ?? s));
  if (missing.length) {
    const found = available.length ? available.join(', ') : 'none';
    throw new Error(`Split${missing.length > 1 ? 's' : ''} ${missing.map((s) => `"${s}"`).join(', ')} not found in ${dataDir} (ImageSets/Main has: ${found}).`);
  }
}

/** A manifest (path or name in models/) that parses and whose model.json exists; returns its model path. */
export function checkManifest(nameOrPath: string, role: string): string {
  let modelPath: string;
  try {
    modelPath = readManifest(resolveManifest(nameOrPath)).modelPath;
  } catch (error) {
    throw new Error(`The ${role} manifest "${nameOrPath}" cannot be read: ${(error as Error).message}`, { cause: error });
  }
  if (!existsSync(modelPath)) throw new Error(`The ${role} manifest "${nameOrPath}" names ${modelPath}, which does not exist.`);
  return modelPath;
}

/**
 * The output folder may be written: absent, empty, or (with `resume` or `overwrite`) a folder
 * that already holds a run.
 */
export function checkOutDir(outDir: string, options: { resume?: boolean; overwrite?: boolean }): void {
  if (!existsSync(outDir)) return;
  if (!statSync(outDir).isDirectory()) throw new Error(`--out ${outDir} is a file, not a folder.`);
  const entries = readdirSync(outDir);
  if (entries.length === 0 || options.resume || options.overwrite) return;
  const shown = entries.slice(0, 4).join(', ') + (entries.length > 4 ? `, … (${entries.length} entries)` : '');
  throw new Error(`--out ${outDir} is not empty (${shown}): pass --overwrite to replace its run, or --resume <checkpoint> to continue it.`);
}
