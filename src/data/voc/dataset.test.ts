import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gzipSync, zipSync } from 'fflate';
import { createTar } from 'nanotar';
import { beforeAll, describe, expect, it } from 'vitest';
import { VOC_CLASSES } from './classes';
import { listVocSplits, loadVocDataset, type VocDataset } from './dataset';
import { fromFiles, fromMemory, fromTar, fromZip, type VocSource } from './source';
import { fromDirectory } from './source-node';

const fixtureDir = fileURLToPath(new URL('../../../../shared/voc-fixture/VOCdevkit', import.meta.url));
const cocoNames = (JSON.parse(readFileSync(new URL('../../../models/nanodet.manifest.json', import.meta.url), 'utf8')) as { classes: string[] }).classes;
const enc = (s: string) => new TextEncoder().encode(s);

/** Image, size and objects, without the path prefix that differs between sources. */
const essence = (ds: VocDataset) => ds.images.map(({ imagePath, ...rest }) => ({ ...rest, file: imagePath.split('/').pop() }));

describe('loadVocDataset on the VOC2012 fixture (disk folder)', () => {
  let source: VocSource;
  let trainval: VocDataset;
  beforeAll(async () => {
    source = await fromDirectory(fixtureDir);
    trainval = await loadVocDataset(source, { split: 'trainval', classNames: cocoNames });
  });

  it('finds the year folder and its splits', async () => {
    expect(trainval.year).toBe('VOC2012');
    expect(trainval.root).toBe('VOC2012');
    expect(trainval.availableSplits).toEqual(['train', 'trainval', 'val']);
    expect(await listVocSplits(source)).toEqual(['train', 'trainval', 'val']);
  });

  it('loads 20 train, 10 val, 30 trainval images with no problems', async () => {
    const train = await loadVocDataset(source, { split: 'train' });
    const val = await loadVocDataset(source, { split: 'val' });
    expect([train.images.length, val.images.length, trainval.images.length]).toEqual([20, 10, 30]);
    expect(trainval.problems).toEqual([]);
    // Objects per split (counted independently from the XML): train 64 (16 difficult), val 19 (4 difficult).
    expect([train.summary.objectCount, train.summary.difficultCount]).toEqual([64, 16]);
    expect([val.summary.objectCount, val.summary.difficultCount]).toEqual([19, 4]);
    // The default label space is the 20 VOC classes in order.
    expect(train.classNames).toEqual(VOC_CLASSES);
    expect(val.images[0]!.id).toBe('2007_000042'); // first line of val.txt; split order is kept
  });

  it('counts 83 objects, 20 difficult, every VOC class present', () => {
    const s = trainval.summary;
    expect(s.imageCount).toBe(30);
    expect(s.objectCount).toBe(83);
    expect(s.difficultCount).toBe(20);
    expect(s.unmappedClasses).toEqual([]);
    expect(s.skipped).toEqual([]);
    expect(Object.keys(s.objectsPerClass).sort()).toEqual([...VOC_CLASSES].sort());
    expect(s.objectsPerClass).toEqual({
      aeroplane: 2, bicycle: 6, bird: 2, boat: 4, bottle: 6, bus: 3, car: 10, cat: 2, chair: 6, cow: 3, diningtable: 2,
      dog: 1, horse: 3, motorbike: 2, person: 23, pottedplant: 1, sheep: 1, sofa: 2, train: 2, tvmonitor: 2,
    });
  });

  it('reads single images exactly as their XML says', () => {
    const byId = new Map(trainval.images.map((i) => [i.id, i]));
    // 2007_000027.xml: 486x500, one person at (174,101)-(349,351), not difficult.
    expect(byId.get('2007_000027')).toEqual({
      id: '2007_000027', imagePath: 'VOC2012/JPEGImages/2007_000027.jpg', width: 486, height: 500,
      objects: [{ box: [174, 101, 349, 351], classIndex: 0, vocName: 'person', difficult: false, truncated: false }],
    });
    // 2007_000129.xml: 334x500; 3 bicycles (2 difficult), 3 persons (1 difficult). COCO: bicycle 1, person 0.
    const img129 = byId.get('2007_000129')!;
    expect(img129.objects.map((o) => [o.vocName, o.classIndex, o.difficult])).toEqual([
      ['bicycle', 1, false], ['bicycle', 1, true], ['bicycle', 1, true], ['person', 0, true], ['person', 0, false], ['person', 0, false],
    ]);
    expect(img129.objects[1]!.box).toEqual([251, 242, 334, 500]); // touches the right and bottom edge: kept as is
    // 2007_000648.xml: 500x333; 4 persons, aeroplane, car difficult (6), the bus not. COCO: bus 5, airplane 4, car 2.
    const img648 = byId.get('2007_000648')!;
    expect([img648.width, img648.height]).toEqual([500, 333]);
    expect(img648.objects.map((o) => `${o.vocName}:${o.classIndex}:${o.difficult ? 'D' : '-'}`)).toEqual([
      'person:0:D', 'person:0:D', 'person:0:D', 'person:0:D', 'bus:5:-', 'aeroplane:4:D', 'car:2:D',
    ]);
  });

  it('returns undecoded image bytes lazily', async () => {
    const jpg = await trainval.readImage('2007_000027');
    expect([jpg[0], jpg[1]]).toEqual([0xff, 0xd8]); // JPEG start-of-image marker
    expect(jpg.length).toBe(readFileSync(`${fixtureDir}/VOC2012/JPEGImages/2007_000027.jpg`).length);
    await expect(trainval.readImage('nope')).rejects.toThrow(/"nope" is not in the loaded VOC2012 trainval split/);
  });

  it('loads the same from picked Files, a .zip, a .tar and a .tar.gz built from the fixture files', async () => {
    const val = await loadVocDataset(source, { split: 'val', classNames: cocoNames });
    // Three val images (2007_000042: 2 trains; 2007_000068: 1 bird; 2007_000175: 1 sheep) under a split of their own.
    const picks = val.images.slice(0, 3);
    const files: Record<string, Uint8Array> = { 'ImageSets/Main/mini.txt': enc(picks.map((i) => i.id).join('\n')) };
    for (const img of picks) {
      for (const rel of [`Annotations/${img.id}.xml`, `JPEGImages/${img.id}.jpg`]) files[rel] = await source.read(`VOC2012/${rel}`);
    }
    const nest = (prefix: string) => Object.fromEntries(Object.entries(files).map(([k, v]) => [prefix + k, v]));
    // Stored (level 0), as JPEG archives usually are; the .tar.gz exercises decompression.
    const zip = await fromZip(zipSync(nest('VOCdevkit/VOC2012/'), { level: 0 }), 'voc.zip');
    const tarEntries = Object.entries(nest('VOC2012/')).map(([name, data]) => ({ name, data }));
    const tar = await fromTar(createTar(tarEntries), 'voc.tar');
    const tgz = await fromTar(gzipSync(createTar(tarEntries), { level: 1 }), 'voc.tar.gz');
    // Picked folder: the folder itself is the year folder; Node's File has no webkitRelativePath, so pass the paths.
    const rel = new Map<File, string>();
    for (const [k, v] of Object.entries(files)) rel.set(new File([v as Uint8Array<ArrayBuffer>], k.split('/').pop()!), `MyPick/${k}`);
    const picked = fromFiles(rel.keys(), (f) => rel.get(f)!);
    for (const archive of [picked, zip, tar, tgz]) {
      const ds = await loadVocDataset(archive, { split: 'mini', classNames: cocoNames });
      expect(ds.year).toBe(archive === picked ? 'MyPick' : 'VOC2012');
      expect(ds.availableSplits).toEqual(['mini']);
      expect(ds.problems).toEqual([]);
      expect(ds.images.map((i) => i.objects.map((o) => o.vocName).join())).toEqual(['train,train', 'bird', 'sheep']);
      expect(essence(ds)).toEqual(essence({ ...val, images: picks }));
      const id = picks[2]!.id;
      // Byte-wise comparison through Buffer: a deep toEqual over 100 kB is slow.
      expect(Buffer.from(await ds.readImage(id)).equals(Buffer.from(await val.readImage(id)))).toBe(true);
    }
  });
});

// ---- Synthetic trees with bad input ----

const xml = (filename: string, objects: [string, number[], number?][], w = 100, h = 80, depth = 3) =>
  `<annotation><filename>${filename}</filename><size><width>${w}</width><height>${h}</height><depth>${depth}</depth></size>` +
  objects
    .map(([name, b, difficult]) => `<object><name>${name}</name><difficult>${difficult ?? 0}</difficult><bndbox><xmin>${b[0]}</xmin><ymin>${b[1]}</ymin><xmax>${b[2]}</xmax><ymax>${b[3]}</ymax></bndbox></object>`)
    .join('') +
  '</annotation>';

const PNG = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function badTree(): VocSource {
  const r = 'VOC2099/';
  return fromMemory('bad', {
    [`${r}ImageSets/Main/train.txt`]: enc('good\npng\nbadxml\nnoimage\nnoann\nghost\n\ngood\n'),
    [`${r}ImageSets/Main/dog_train.txt`]: enc('good 1\n'), // per-class file: not a split
    [`${r}Annotations/good.xml`]: enc(
      xml('good.jpg', [
        ['dog', [10, 10, 50, 50]],
        ['cat', [90, 70, 130, 95]], // partly outside 100x80: clipped to (90,70)-(100,80)
        ['cat', [120, 90, 130, 95]], // fully outside: skipped
        ['dog', [30, 30, 30, 60]], // zero width: skipped
        ['bird', [40, 40, 20, 60]], // negative width: skipped
        ['unicorn', [1, 1, 10, 10]], // unknown class: skipped, counted
        ['person', [1, 1, 100, 80], 1], // the whole image, difficult
      ]),
    ),
    [`${r}JPEGImages/good.jpg`]: enc('jpeg bytes'),
    [`${r}Annotations/png.xml`]: enc(xml('png.png', [['cat', [5, 5, 20, 20]]], 100, 80, 1)), // grayscale PNG
    [`${r}JPEGImages/png.png`]: PNG,
    [`${r}Annotations/badxml.xml`]: enc('<annotation><size><width>3'),
    [`${r}JPEGImages/badxml.jpg`]: enc('x'),
    [`${r}Annotations/noimage.xml`]: enc(xml('noimage.jpg', [])),
    [`${r}JPEGImages/noann.jpg`]: enc('x'),
  });
}

describe('loadVocDataset on bad input', () => {
  it('skips what is broken, reports each file, and loads the rest', async () => {
    const ds = await loadVocDataset(badTree(), { split: 'train' });
    expect(ds.images.map((i) => i.id)).toEqual(['good', 'png']);
    const good = ds.images[0]!;
    // VOC order: dog 11, cat 7, person 14.
    expect(good.objects).toEqual([
      { box: [10, 10, 50, 50], classIndex: 11, vocName: 'dog', difficult: false, truncated: false },
      { box: [90, 70, 100, 80], classIndex: 7, vocName: 'cat', difficult: false, truncated: false },
      { box: [1, 1, 100, 80], classIndex: 14, vocName: 'person', difficult: true, truncated: false },
    ]);
    const ann = 'VOC2099/Annotations/good.xml';
    const reasons = ds.problems.map((p) => `${p.kind} ${p.file}: ${p.reason}`);
    expect(reasons).toEqual([
      expect.stringMatching(/^image-skipped VOC2099\/ImageSets\/Main\/train.txt: image id "good" is listed twice/),
      `box-clipped ${ann}: object #2 ("cat"): box [90, 70, 130, 95] reaches outside the 100x80 image; clipped to [90, 70, 100, 80]`,
      `object-skipped ${ann}: object #3 ("cat"): box [120, 90, 130, 95] lies outside the 100x80 image; object skipped`,
      `object-skipped ${ann}: object #4 ("dog"): box [30, 30, 30, 60] has zero or negative area; object skipped`,
      `object-skipped ${ann}: object #5 ("bird"): box [40, 40, 20, 60] has zero or negative area; object skipped`,
      `object-skipped ${ann}: object #6 ("unicorn"): unknown class, not among the model's classes; object skipped`,
      expect.stringMatching(/^image-skipped VOC2099\/Annotations\/badxml.xml: malformed XML/),
      expect.stringMatching(/^image-skipped VOC2099\/JPEGImages\/noimage: image file is missing \(looked for noimage.jpg, noimage.jpeg, noimage.png\)/),
      'image-skipped VOC2099/Annotations/noann.xml: annotation file is missing',
      'image-skipped VOC2099/ImageSets/Main/train.txt: ghost: listed in the split but neither its annotation nor its image exists',
    ]);
    expect(ds.summary).toMatchObject({
      imageCount: 2,
      objectCount: 4, // good: dog, cat, person; png: cat
      difficultCount: 1,
      objectsPerClass: { dog: 1, cat: 2, person: 1 },
      unknownClassObjects: { unicorn: 1 },
      unmappedClasses: [],
    });
    // Every problem but the clipped box is a skip.
    expect(ds.summary.skipped.length).toBe(ds.problems.length - 1);
    expect(ds.availableSplits).toEqual(['train']);
  });

  it('accepts PNG (and grayscale) images by extension and returns their bytes', async () => {
    const ds = await loadVocDataset(badTree(), { split: 'train' });
    const png = ds.images.find((i) => i.id === 'png')!;
    expect(png.imagePath).toBe('VOC2099/JPEGImages/png.png');
    expect(await ds.readImage('png')).toEqual(PNG);
  });

  it('counts VOC classes a model lacks as unmapped', async () => {
    const ds = await loadVocDataset(badTree(), { split: 'train', classNames: ['person', 'dog'] });
    expect(ds.images[0]!.objects.map((o) => o.vocName)).toEqual(['dog', 'person']);
    // The class is checked before the box: the cats (2 in good, 1 in png) and the bird count here.
    expect(ds.summary.unknownClassObjects).toEqual({ cat: 3, bird: 1, unicorn: 1 });
    expect(ds.summary.unmappedClasses.length).toBe(18);
    expect(ds.problems.some((p) => p.reason === 'object #1 ("cat"): the model has no class for this VOC class; object skipped')).toBe(true);
  });

  it('names the splits that exist when the split file is missing', async () => {
    await expect(loadVocDataset(badTree(), { split: 'test' })).rejects.toThrow(
      'bad: split "test" not found (no VOC2099/ImageSets/Main/test.txt); the splits there are: train.',
    );
    const noSets = fromMemory('nosets', { 'Annotations/a.xml': enc(xml('a.jpg', [])), 'JPEGImages/a.jpg': enc('x') });
    await expect(loadVocDataset(noSets, { split: 'train' })).rejects.toThrow(/ImageSets\/Main holds no split files/);
  });

  it('asks which year when there are several, and says when there is none', async () => {
    const two = fromMemory('two', {
      'A/Annotations/a.xml': enc(xml('a.jpg', [['dog', [1, 1, 5, 5]]])), 'A/JPEGImages/a.jpg': enc('x'), 'A/ImageSets/Main/s.txt': enc('a'),
      'B/Annotations/b.xml': enc(xml('b.jpg', [])), 'B/JPEGImages/b.jpg': enc('x'), 'B/ImageSets/Main/s.txt': enc('b'),
    });
    await expect(loadVocDataset(two, { split: 's' })).rejects.toThrow(/several VOC folders found \(A, B\)/);
    expect((await loadVocDataset(two, { split: 's', year: 'B' })).images.map((i) => i.id)).toEqual(['b']);
    await expect(loadVocDataset(two, { split: 's', year: 'C' })).rejects.toThrow(/no VOC folder named "C"; found A, B/);
    await expect(loadVocDataset(fromMemory('empty', {}), { split: 's' })).rejects.toThrow(/empty: no VOC folder found/);
  });

  it('reports progress and stops when aborted', async () => {
    const seen: [number, number][] = [];
    await loadVocDataset(badTree(), { split: 'train', onProgress: (d, t) => seen.push([d, t]) });
    expect(seen).toEqual([[6, 6]]); // 7 ids listed, one twice: 6 to read, one batch
    const ctrl = new AbortController();
    ctrl.abort();
    await expect(loadVocDataset(badTree(), { split: 'train', signal: ctrl.signal })).rejects.toThrow();
  });
});
