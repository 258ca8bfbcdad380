import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { VOC_CLASSES, createClassMapper, mapVocClasses } from './classes';

const cocoNames = (JSON.parse(readFileSync(new URL('../../../models/nanodet.manifest.json', import.meta.url), 'utf8')) as { classes: string[] }).classes;

describe('VOC classes', () => {
  it('lists the 20 classes in the official order', () => {
    expect(VOC_CLASSES.length).toBe(20);
    expect(VOC_CLASSES[0]).toBe('aeroplane');
    expect(VOC_CLASSES[14]).toBe('person');
    expect(VOC_CLASSES[19]).toBe('tvmonitor');
  });

  it('maps every VOC class onto the 80 COCO names of the NanoDet manifest', () => {
    const { toModel, unmapped } = mapVocClasses(cocoNames);
    expect(unmapped).toEqual([]);
    // COCO order: person 0, bicycle 1, car 2, motorcycle 3, airplane 4, ..., couch 57, potted plant 58, dining table 60, tv 62.
    expect(toModel.person).toBe(0);
    expect(toModel.aeroplane).toBe(4);
    expect(toModel.motorbike).toBe(3);
    expect(toModel.sofa).toBe(57);
    expect(toModel.pottedplant).toBe(58);
    expect(toModel.diningtable).toBe(60);
    expect(toModel.tvmonitor).toBe(62);
    for (const c of VOC_CLASSES) expect(cocoNames[toModel[c]!]).toBeDefined();
  });

  it('maps the VOC names onto themselves, and reports classes a model lacks', () => {
    const identity = mapVocClasses(VOC_CLASSES);
    expect(VOC_CLASSES.map((c) => identity.toModel[c])).toEqual([...Array(20).keys()]);
    const small = mapVocClasses(['Person', 'dining_table', 'tv']);
    expect(small.toModel.person).toBe(0);
    expect(small.toModel.diningtable).toBe(1);
    expect(small.toModel.tvmonitor).toBe(2);
    expect(small.unmapped.length).toBe(17);
    expect(small.unmapped).not.toContain('person');
  });

  it('looks up custom names and rejects unknown ones', () => {
    const find = createClassMapper(['unicorn', 'couch']);
    expect(find('unicorn')).toBe(0);
    expect(find('sofa')).toBe(1);
    expect(find('dragon')).toBeUndefined();
  });
});
