import { fileURLToPath } from 'node:url';
import { zipSync } from 'fflate';
import { createTar } from 'nanotar';
import { describe, expect, it } from 'vitest';
import { findVocRoots, fromFiles, fromMemory, fromTar, fromZip, normalizePath } from './source';
import { fromDirectory } from './source-node';

const bytes = (s: string) => new TextEncoder().encode(s);
const fixtureDir = fileURLToPath(new URL('../../../../shared/voc-fixture/VOCdevkit', import.meta.url));

describe('findVocRoots', () => {
  it('finds year folders at any depth, and the tree itself', () => {
    const paths = [
      'VOCdevkit/VOC2007/Annotations/1.xml', 'VOCdevkit/VOC2007/JPEGImages/1.jpg', 'VOCdevkit/VOC2007/ImageSets/Main/train.txt',
      'deep/er/MyYear/Annotations/2.xml', 'deep/er/MyYear/JPEGImages/2.png',
      'OnlyAnn/Annotations/3.xml', // no JPEGImages: not a VOC folder
      '__MACOSX/VOCdevkit/VOC2007/Annotations/._1.xml', '__MACOSX/VOCdevkit/VOC2007/JPEGImages/._1.jpg',
    ];
    expect(findVocRoots(paths)).toEqual([
      { dir: 'VOCdevkit/VOC2007', year: 'VOC2007', hasImageSets: true },
      { dir: 'deep/er/MyYear', year: 'MyYear', hasImageSets: false },
    ]);
    expect(findVocRoots(['Annotations/a.xml', 'JPEGImages/a.jpg'], 'picked')).toEqual([{ dir: '', year: 'picked', hasImageSets: false }]);
  });

  it('normalises separators and leading ./', () => {
    expect(normalizePath('.\\VOC2012\\Annotations\\a.xml')).toBe('VOC2012/Annotations/a.xml');
    expect(normalizePath('/x//y/./z')).toBe('x/y/z');
  });
});

describe('sources', () => {
  it('lists and reads a folder on disk', async () => {
    const src = await fromDirectory(fixtureDir);
    const paths = await src.list();
    expect(src.label).toBe('VOCdevkit');
    // 30 XML + 30 JPEG + 63 split files (3 main splits + 20 classes x 3) = 123, plus nothing else.
    expect(paths.filter((p) => p.startsWith('VOC2012/Annotations/')).length).toBe(30);
    expect(paths.filter((p) => p.startsWith('VOC2012/JPEGImages/')).length).toBe(30);
    expect(paths.filter((p) => p.startsWith('VOC2012/ImageSets/Main/')).length).toBe(63);
    const txt = new TextDecoder().decode(await src.read('VOC2012/ImageSets/Main/val.txt'));
    expect(txt.split('\n')[0]).toBe('2007_000042');
    await expect(src.read('VOC2012/nope.txt')).rejects.toThrow(/cannot read "VOC2012\/nope.txt"/);
    await expect(fromDirectory(`${fixtureDir}/does-not-exist`)).rejects.toThrow(/cannot be read/);
  });

  it('reads picked Files by their relative path', async () => {
    const a = new File([bytes('hello')], 'a.xml');
    const b = new File([bytes('jpg!')], 'a.jpg');
    const rel = new Map([[a, 'picked/VOC/Annotations/a.xml'], [b, 'picked/VOC/JPEGImages/a.jpg']]);
    const src = fromFiles([a, b], (f) => rel.get(f)!);
    expect(src.label).toBe('picked');
    expect(await src.list()).toEqual(['picked/VOC/Annotations/a.xml', 'picked/VOC/JPEGImages/a.jpg']);
    expect(new TextDecoder().decode(await src.read('picked/VOC/Annotations/a.xml'))).toBe('hello');
    // Without a path (Node's File has no webkitRelativePath) the bare name is used.
    expect(await fromFiles([a]).list()).toEqual(['a.xml']);
  });

  it('reads zip and tar archives, keeping only the VOC folders', async () => {
    const tree = { 'root/VOC/Annotations/a.xml': bytes('<a/>'), 'root/VOC/JPEGImages/a.jpg': bytes('img'), 'root/readme.txt': bytes('x') };
    const zip = await fromZip(zipSync(tree));
    expect([...(await zip.list())].sort()).toEqual(['root/VOC/Annotations/a.xml', 'root/VOC/JPEGImages/a.jpg']);
    expect(new TextDecoder().decode(await zip.read('root/VOC/JPEGImages/a.jpg'))).toBe('img');
    const tarBytes = createTar(Object.entries(tree).map(([name, data]) => ({ name, data })));
    // A view into a larger buffer: nanotar would read the whole buffer, so the source copies it.
    const padded = new Uint8Array(tarBytes.length + 7);
    padded.set(tarBytes, 7);
    const tar = await fromTar(padded.subarray(7));
    expect([...(await tar.list())].sort()).toEqual(['root/VOC/Annotations/a.xml', 'root/VOC/JPEGImages/a.jpg']);
    expect(new TextDecoder().decode(await tar.read('root/VOC/Annotations/a.xml'))).toBe('<a/>');
  });

  it('rejects archives that are not archives, with the label in the message', async () => {
    await expect(fromZip(bytes('definitely not a zip file'), 'my.zip')).rejects.toThrow(/my\.zip: could not read the zip archive/);
    await expect(fromTar(bytes('short'), 'my.tar')).rejects.toThrow(/my\.tar: too short/);
  });

  it('serves an in-memory map', async () => {
    const src = fromMemory('mem', { './x/y.txt': bytes('1') });
    expect(await src.list()).toEqual(['x/y.txt']);
    await expect(src.read('x/z.txt')).rejects.toThrow(/mem: no file "x\/z.txt"/);
  });
});
