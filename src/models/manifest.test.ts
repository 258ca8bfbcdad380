import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseManifest } from './manifest';

const nanodet = JSON.parse(readFileSync(new URL('../../models/nanodet.manifest.json', import.meta.url), 'utf8')) as unknown;

describe('parseManifest', () => {
  it('accepts the shipped NanoDet-g manifest', () => {
    const m = parseManifest(nanodet);
    expect(m.classes).toHaveLength(80);
    expect(m.classes[0]).toBe('person');
    expect(m.head.strides).toEqual([8, 16, 32]);
    expect(m.input).toEqual({ name: 'input_1', size: 416, layout: 'NCHW' });
  });
  it('lists every problem of a broken manifest at once', () => {
    const broken = { ...(nanodet as object), manifestVersion: 2, classes: [], head: { type: 'yolo' } };
    let message = '';
    try {
      parseManifest(broken, 'mine.json');
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toContain('Invalid model manifest (mine.json)');
    expect(message).toContain('"manifestVersion" must be 1');
    expect(message).toContain('"classes" must be a non-empty list');
    expect(message).toContain('"head.type" must be "gfl"');
    expect(message).toContain('"head.outputs" must list one node per stride');
  });
  it('rejects a non-object', () => {
    expect(() => parseManifest('nope')).toThrow(/not a JSON object/);
  });
});
