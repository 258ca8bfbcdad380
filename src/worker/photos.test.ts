import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { strToU8, zipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { decodeImageBytes } from '../data/decode-node';
import { fromZip, isPhotoPath } from '../data/voc/source';
import { combinedLoader, LabPhotos } from './photos';

const unlabeled = new URL('../../../shared/voc-unlabeled/JPEGImages', import.meta.url).pathname;

describe('photos without annotations', () => {
  it('keeps the photos of an archive (not its other files or macOS litter) as unlabelled training images', async () => {
    const names = readdirSync(unlabeled).sort().slice(0, 2);
    const zip = zipSync({
      [`set/${names[1]}`]: readFileSync(join(unlabeled, names[1]!)),
      [`set/${names[0]}`]: readFileSync(join(unlabeled, names[0]!)),
      'set/notes.txt': strToU8('hello'),
      [`__MACOSX/set/._${names[0]}`]: strToU8('x'),
    });
    const photos = await LabPhotos.open(await fromZip(zip, 'set.zip', isPhotoPath), decodeImageBytes);
    expect(photos.info()).toEqual({ label: 'set.zip', count: 2, examples: [`set/${names[0]}`, `set/${names[1]}`] });
    const images = photos.images();
    expect(images).toEqual([
      { id: `photo:set/${names[0]}`, objects: [], unlabeled: true },
      { id: `photo:set/${names[1]}`, objects: [], unlabeled: true },
    ]);
    expect(photos.images(1)).toHaveLength(1);
    const load = combinedLoader(async () => ({ width: 1, height: 1, channels: 3, data: new Uint8Array(3) }), photos.loader());
    const photo = await load(images[0]!.id);
    expect(photo.width).toBeGreaterThan(100);
    expect((await load('2007_000027')).width).toBe(1);
  });

  it('refuses an archive with no photo in it, saying what to pick', async () => {
    const zip = zipSync({ 'a/readme.txt': strToU8('x') });
    await expect(LabPhotos.open(await fromZip(zip, 'docs.zip', isPhotoPath), decodeImageBytes)).rejects.toThrow('docs.zip holds no photos (.jpg, .jpeg, .png). Pick a folder or archive of images.');
  });
});
