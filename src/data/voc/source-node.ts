/**
 * The Node-only VOC source: a folder on disk, listed recursively and read lazily.
 * Kept apart from ./source.ts so that browser bundles never import node:fs.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join, relative, sep } from 'node:path';
import { normalizePath, type VocSource } from './source';

/** A source over a folder: the VOCdevkit, a year folder inside it, or any folder above them. */
export async function fromDirectory(path: string): Promise<VocSource> {
  const info = await stat(path).catch((error: unknown) => {
    throw new Error(`VOC folder "${path}" cannot be read (${(error as Error).message}). Check the path.`, { cause: error });
  });
  if (!info.isDirectory()) throw new Error(`"${path}" is not a folder; give the folder that holds the VOC data.`);
  let cached: string[] | undefined;
  return {
    label: basename(path),
    list: async () => {
      if (!cached) {
        const entries = await readdir(path, { recursive: true, withFileTypes: true });
        cached = entries
          .filter((e) => e.isFile() || e.isSymbolicLink())
          .map((e) => normalizePath(relative(path, join(e.parentPath, e.name)).split(sep).join('/')));
      }
      return cached;
    },
    read: async (file) => {
      const buf = await readFile(join(path, ...normalizePath(file).split('/'))).catch((error: unknown) => {
        throw new Error(`${basename(path)}: cannot read "${file}" (${(error as Error).message}).`, { cause: error });
      });
      return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    },
  };
}
