import { describe, expect, it } from 'vitest';
import { AXIS_FONT_PX, labelStep } from './components/Distribution';

describe('distribution axis labels', () => {
  it('are at least 11 px', () => {
    expect(AXIS_FONT_PX).toBeGreaterThanOrEqual(11);
  });
  it('skip enough bars that anchor indices never overlap', () => {
    // Four-digit anchor indices (about 27 px at 11 px monospace, plus an 8 px gap) on 14 px slots: every 3rd.
    const anchors = Array.from({ length: 20 }, (_, i) => String(2700 + i));
    expect(labelStep(anchors, 14)).toBe(3);
    const step = labelStep(anchors, 14);
    // Centres of two shown labels are step × slot apart: more than a label's width.
    expect(step * 14).toBeGreaterThan(4 * AXIS_FONT_PX * 0.62);
    // Bin numbers 0–16 on wide slots: every one.
    expect(labelStep(Array.from({ length: 17 }, (_, i) => String(i)), 40)).toBe(1);
  });
});
