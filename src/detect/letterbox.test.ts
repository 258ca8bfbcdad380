import { describe, expect, it } from 'vitest';
import { computeLetterbox, inputToSource, sourceToInput } from './letterbox';

describe('computeLetterbox', () => {
  it('fits a landscape image and centres it vertically', () => {
    // 500x375 into 416: scale 0.832 → 416x312, pad top (416-312)/2 = 52
    const lb = computeLetterbox(500, 375, 416);
    expect(lb).toMatchObject({ resizedWidth: 416, resizedHeight: 312, padLeft: 0, padTop: 52 });
  });
  it('fits a portrait image and centres it horizontally, flooring odd padding', () => {
    // 333x500 into 320: scale 0.64 → 213.12 → 213 wide, pad (320-213)/2 = 53.5 → 53
    const lb = computeLetterbox(333, 500, 320);
    expect(lb).toMatchObject({ resizedWidth: 213, resizedHeight: 320, padLeft: 53, padTop: 0 });
  });
  it('rejects an empty image', () => {
    expect(() => computeLetterbox(0, 10, 416)).toThrow(/no pixels/);
  });
});

describe('box mapping', () => {
  it('maps source → input → source exactly', () => {
    const lb = computeLetterbox(333, 500, 320);
    const box = [10.5, 20, 300, 480] as const;
    const back = inputToSource(lb, sourceToInput(lb, box));
    back.forEach((v, i) => expect(v).toBeCloseTo(box[i]!, 9));
  });
  it('maps the padded area outside the image onto the image border', () => {
    const lb = computeLetterbox(500, 375, 416);
    expect([...inputToSource(lb, [0, 0, 416, 416])]).toEqual([0, 0, 500, 375]);
    // a point in the middle of the input is the middle of the image
    const mid = inputToSource(lb, [208, 208, 208, 208]);
    expect(mid[0]).toBeCloseTo(250, 9);
    expect(mid[1]).toBeCloseTo(187.5, 9);
  });
});
