import { describe, expect, it } from 'vitest';
import { gradientShareLine, gradientShares } from './gradient-shares';

describe('gradient shares', () => {
  it('divides each norm by the sum of the norms', () => {
    expect(gradientShares({ detection: 3, kd: 1, hints: 0 })).toEqual([
      { part: 'detection', norm: 3, share: 0.75 },
      { part: 'kd', norm: 1, share: 0.25 },
      { part: 'hints', norm: 0, share: 0 },
    ]);
    expect(gradientShares({ a: 0, b: 0 }).map((s) => s.share)).toEqual([0, 0]);
    expect(gradientShares({ a: NaN, b: 2 })).toEqual([{ part: 'b', norm: 2, share: 1 }]);
  });

  it('prints one line per measured step', () => {
    expect(gradientShareLine(25, { detection: 0.42, kd: 0.083 })).toBe('gradient shares at step 25: detection 83% (0.42) · kd 17% (0.083)');
  });
});
