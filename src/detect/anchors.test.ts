import { describe, expect, it } from 'vitest';
import { makeAnchorGrid } from './anchors';

describe('makeAnchorGrid', () => {
  it('lays out NanoDet levels at 416: 52², 26², 13² anchors', () => {
    const g = makeAnchorGrid(416, [8, 16, 32], 5);
    expect(g.levels.map((l) => [l.height, l.offset])).toEqual([
      [52, 0],
      [26, 2704],
      [13, 3380],
    ]);
    expect(g.count).toBe(3549);
  });
  it('places centres at (x + 0.5)·s and boxes of side 5·s', () => {
    const g = makeAnchorGrid(64, [16, 32], 5);
    // level 1 (stride 32) is 2x2 starting at index 16; anchor (x=1, y=0) is index 17
    const i = 16 + 1;
    expect([g.centres[2 * i], g.centres[2 * i + 1]]).toEqual([48, 16]);
    expect(Array.from(g.boxes.slice(4 * i, 4 * i + 4))).toEqual([-32, -64, 128, 96]);
  });
});
