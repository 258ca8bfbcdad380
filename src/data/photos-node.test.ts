import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { listPhotoFiles, loadPhotos } from './photos-node';

const unlabeled = new URL('../../../shared/voc-unlabeled/JPEGImages', import.meta.url).pathname;

describe('a folder of photos on disk', () => {
  it('lists the 160 unlabelled VOC photos in name order and loads the first n, with a hash of what it read', () => {
    const files = listPhotoFiles(unlabeled);
    expect(files).toHaveLength(160);
    expect([...files].sort()).toEqual(files);
    const a = loadPhotos(unlabeled, 3);
    expect(a.images).toHaveLength(3);
    expect(a.files).toEqual(files.slice(0, 3));
    expect(a.images[0]!.width).toBeGreaterThan(0);
    expect(loadPhotos(unlabeled, 3).hash).toBe(a.hash);
    expect(loadPhotos(unlabeled, 4).hash).not.toBe(a.hash);
  });

  it('skips files that do not decode, and says so when none does', () => {
    const dir = mkdtempSync(join(tmpdir(), 'photos-'));
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'sub', 'broken.jpg'), new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]));
    writeFileSync(join(dir, 'notes.txt'), 'not a photo');
    expect(listPhotoFiles(dir)).toEqual(['sub/broken.jpg']);
    expect(() => loadPhotos(dir)).toThrow(/None of the 1 image files in .* could be decoded \(first: sub\/broken\.jpg: /);
    expect(() => loadPhotos(join(dir, 'missing'))).toThrow(/Cannot read the photo folder/);
    const empty = mkdtempSync(join(tmpdir(), 'photos-'));
    expect(() => loadPhotos(empty)).toThrow(/No photos \(\.jpg, \.jpeg, \.png\) in /);
  });
});
