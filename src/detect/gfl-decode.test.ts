import { describe, expect, it } from 'vitest';
import { cellCentre, decodeGflLevel, expectedBin } from './gfl-decode';

describe('expectedBin', () => {
  it('is the index of a one-hot distribution', () => {
    const logits = [0, 0, 0, 50, 0];
    expect(expectedBin(logits, 0, 5)).toBeCloseTo(3, 6);
  });
  it('is the mean index of a uniform distribution', () => {
    expect(expectedBin([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1], 0, 11)).toBeCloseTo(5, 10);
  });
  it('weights two equal bins evenly and reads at an offset', () => {
    // bins 2 and 4 at logit log(1)=0 vs -inf elsewhere → expectation 3
    const v = [9, 9, -1e9, -1e9, 0, -1e9, 0];
    expect(expectedBin(v, 2, 5)).toBeCloseTo(3, 10);
  });
});

describe('decodeGflLevel', () => {
  const numClasses = 2;
  const regMax = 3; // 4 bins per edge
  const channels = numClasses + 4 * (regMax + 1);

  it('decodes a single confident cell into its box and class', () => {
    // 2x2 grid, stride 8. Cell (x=1, y=0) says class 1 with logit 2 (p = 0.8808).
    const data = new Float32Array(2 * 2 * channels).fill(-20);
    const base = (0 * 2 + 1) * channels;
    data[base + 1] = 2;
    // edges l,t,r,b as one-hot bins 1, 0, 2, 3 → distances 8, 0, 16, 24
    const hot = [1, 0, 2, 3];
    hot.forEach((bin, e) => {
      for (let i = 0; i <= regMax; i++) data[base + numClasses + e * (regMax + 1) + i] = i === bin ? 30 : 0;
    });
    const dets = decodeGflLevel({ data, height: 2, width: 2, stride: 8 }, { numClasses, regMax, inputSize: 64, scoreThreshold: 0.5 });
    expect(dets).toHaveLength(1);
    const [cx, cy] = cellCentre(1, 0, 8); // (12, 4)
    expect(cx).toBe(12);
    expect(cy).toBe(4);
    expect(dets[0]!.classIndex).toBe(1);
    expect(dets[0]!.score).toBeCloseTo(1 / (1 + Math.exp(-2)), 6);
    const b = dets[0]!.box;
    expect(b[0]).toBeCloseTo(4, 4);
    expect(b[1]).toBeCloseTo(4, 4);
    expect(b[2]).toBeCloseTo(28, 4);
    expect(b[3]).toBeCloseTo(28, 4);
  });

  it('clips boxes to the input and skips scores at the threshold', () => {
    const data = new Float32Array(1 * 1 * channels).fill(0); // score exactly 0.5 for both classes
    expect(decodeGflLevel({ data, height: 1, width: 1, stride: 32 }, { numClasses, regMax, inputSize: 32, scoreThreshold: 0.5 })).toHaveLength(0);
    data[0] = 1;
    const dets = decodeGflLevel({ data, height: 1, width: 1, stride: 32 }, { numClasses, regMax, inputSize: 32, scoreThreshold: 0.5 });
    // uniform bins → expectation 1.5 bins = 48 px each way from centre 16 → clipped to [0, 32]
    expect(dets).toHaveLength(1);
    expect([...dets[0]!.box]).toEqual([0, 0, 32, 32]);
  });

  it('rejects output of the wrong size', () => {
    expect(() =>
      decodeGflLevel({ data: new Float32Array(5), height: 1, width: 1, stride: 8 }, { numClasses, regMax, inputSize: 8, scoreThreshold: 0.1 }),
    ).toThrow(/expected 1x1x18 = 18 values, got 5/);
  });
});
