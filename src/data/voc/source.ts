/**
 * Where a VOC dataset's files come from: a file tree that can be listed and read as bytes.
 *
 * Implementations here use only standard Web APIs (File, Blob, Uint8Array) plus fflate and
 * nanotar, so they run in a window, a worker and Node alike:
 * - `fromFiles`: the `File`s of a folder picked with <input webkitdirectory> (read lazily);
 * - `fromZip`, `fromTar` (also .tar.gz): an archive held in memory;
 * - `fromMemory`: a path → bytes map (tests, generated data).
 * The Node disk folder source, `fromDirectory`, lives in ./source-node.ts so that browser
 * bundles never see node:fs.
 *
 * `findVocRoots` finds every VOC year folder (one holding both Annotations/ and JPEGImages/)
 * anywhere in the tree: `VOCdevkit/VOC2007/...`, `VOC2012/...`, or the tree itself.
 */
import { gunzipSync, unzipSync } from 'fflate';
import { parseTar } from 'nanotar';

export interface VocSource {
  /** Names the source in messages (a folder or archive name). */
  readonly label: string;
  /** Every file path in the tree, '/'-separated, relative to the source's root, no leading '/'. */
  list(): Promise<readonly string[]>;
  /** The bytes of one listed file; rejects with a message naming the path if it is absent. */
  read(path: string): Promise<Uint8Array>;
}

/** One VOC year folder found in a source. */
export interface VocRoot {
  /** Path prefix of the folder inside the source, '' when the source itself is the folder. */
  dir: string;
  /** The folder's name (e.g. "VOC2007"), or the source label when `dir` is ''. */
  year: string;
  /** Whether ImageSets/Main/ holds at least one file. */
  hasImageSets: boolean;
}

/** '/'-separated, no leading './' or '/', no empty segments. */
export function normalizePath(path: string): string {
  return path.replace(/\\/g, '/').split('/').filter((s) => s !== '' && s !== '.').join('/');
}

export function joinPath(dir: string, rest: string): string {
  return dir === '' ? rest : `${dir}/${rest}`;
}

/** macOS archive litter (__MACOSX/ mirrors, ._ resource forks) that would look like a second VOC tree. */
function isJunk(path: string): boolean {
  return path.split('/').some((s) => s === '__MACOSX' || s.startsWith('._') || s === '.DS_Store');
}

const VOC_DIRS = new Set(['Annotations', 'JPEGImages', 'ImageSets']);

/** Whether a path is a photo (JPEG or PNG) and not archive litter: what a photo archive keeps. */
export function isPhotoPath(path: string): boolean {
  return !isJunk(path) && /\.(jpe?g|png)$/i.test(path);
}

/** Whether a path lies in a folder a VOC loader reads; archives keep only these to save memory. */
export function isVocPath(path: string): boolean {
  return !isJunk(path) && path.split('/').some((s) => VOC_DIRS.has(s));
}

/** Every VOC year folder in `paths`, sorted by path. */
export function findVocRoots(paths: Iterable<string>, label = ''): VocRoot[] {
  const withAnn = new Set<string>();
  const withImg = new Set<string>();
  const withSets = new Set<string>();
  for (const raw of paths) {
    const path = normalizePath(raw);
    if (isJunk(path)) continue;
    const segs = path.split('/');
    // Only direct children count: <dir>/Annotations/<file>, <dir>/ImageSets/Main/<file>.
    const n = segs.length;
    const dir = segs.slice(0, -2).join('/');
    if (segs[n - 2] === 'Annotations') withAnn.add(dir);
    if (segs[n - 2] === 'JPEGImages') withImg.add(dir);
    if (n >= 3 && segs[n - 3] === 'ImageSets' && segs[n - 2] === 'Main') withSets.add(segs.slice(0, -3).join('/'));
  }
  return [...withAnn]
    .filter((d) => withImg.has(d))
    .sort()
    .map((dir) => ({ dir, year: dir === '' ? label : (dir.split('/').pop() ?? dir), hasImageSets: withSets.has(dir) }));
}

/** A source over an in-memory map of path → bytes. */
export function fromMemory(label: string, entries: ReadonlyMap<string, Uint8Array> | Readonly<Record<string, Uint8Array>>): VocSource {
  const map = new Map<string, Uint8Array>();
  const it = entries instanceof Map ? entries.entries() : Object.entries(entries);
  for (const [path, bytes] of it) map.set(normalizePath(path), bytes);
  const paths = [...map.keys()];
  return {
    label,
    list: () => Promise.resolve(paths),
    read: (path) => {
      const bytes = map.get(normalizePath(path));
      return bytes ? Promise.resolve(bytes) : Promise.reject(new Error(`${label}: no file "${path}".`));
    },
  };
}

/**
 * A source over the `File`s of a picked folder. Each file's path is `relativePathOf(file)` when
 * given, else its `webkitRelativePath` (set by <input webkitdirectory> and drag-and-drop of a
 * folder), else its bare name. Bytes are read only when asked for.
 */
export function fromFiles(files: Iterable<File> | ArrayLike<File>, relativePathOf?: (file: File) => string): VocSource {
  const map = new Map<string, File>();
  for (const file of Array.from(files)) {
    const rel = relativePathOf?.(file) ?? ((file as { webkitRelativePath?: string }).webkitRelativePath || file.name);
    map.set(normalizePath(rel), file);
  }
  const paths = [...map.keys()];
  const label = paths[0]?.split('/')[0] ?? 'files';
  return {
    label,
    list: () => Promise.resolve(paths),
    read: async (path) => {
      const file = map.get(normalizePath(path));
      if (!file) throw new Error(`${label}: no file "${path}" among the picked files.`);
      return new Uint8Array(await file.arrayBuffer());
    },
  };
}

type Bytes = Uint8Array | ArrayBuffer | Blob;

async function toBytes(data: Bytes): Promise<Uint8Array> {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(await data.arrayBuffer());
}

/**
 * A source over a .zip archive. The archive is decompressed at once (fflate `unzipSync`,
 * synchronous because this runs in a worker anyway), keeping only the VOC folders; for the
 * full 2 GB VOC2012 prefer a picked folder, which reads lazily.
 */
export async function fromZip(data: Bytes, label = 'archive.zip', keep: (path: string) => boolean = isVocPath): Promise<VocSource> {
  const bytes = await toBytes(data);
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(bytes, { filter: (f) => !f.name.endsWith('/') && keep(normalizePath(f.name)) });
  } catch (error) {
    throw new Error(`${label}: could not read the zip archive (${(error as Error).message}). Is it a complete .zip file?`, { cause: error });
  }
  return fromMemory(label, files);
}

/**
 * A source over a .tar archive, or a gzip-compressed one (.tar.gz / .tgz, detected by its
 * magic bytes). Parsed with nanotar; file contents are views into the (decompressed) archive.
 * Only the VOC folders are kept.
 */
export async function fromTar(data: Bytes, label = 'archive.tar', keep: (path: string) => boolean = isVocPath): Promise<VocSource> {
  let bytes = await toBytes(data);
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes);
    } catch (error) {
      throw new Error(`${label}: looks gzip-compressed but could not be decompressed (${(error as Error).message}).`, { cause: error });
    }
  }
  // nanotar reads `data.buffer` whole, so a view into a larger buffer must be copied first.
  if (bytes.byteOffset !== 0 || bytes.byteLength !== bytes.buffer.byteLength) bytes = bytes.slice();
  if (bytes.byteLength < 512) throw new Error(`${label}: too short to be a tar archive (${bytes.byteLength} bytes).`);
  let items: { name: string; data?: Uint8Array }[];
  try {
    items = parseTar(bytes, {
      filter: (f) => (f.type === 'file' || f.type === 'contiguousFile') && keep(normalizePath(f.name)),
    });
  } catch (error) {
    throw new Error(`${label}: could not read the tar archive (${(error as Error).message}).`, { cause: error });
  }
  const files = new Map<string, Uint8Array>();
  for (const item of items) files.set(item.name, item.data ?? new Uint8Array(0));
  return fromMemory(label, files);
}
