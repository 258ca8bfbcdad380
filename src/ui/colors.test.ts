import { describe, expect, it } from 'vitest';
import { constantValue, extent, formatValue, sequential } from './colors';

describe('map colours and numbers', () => {
  it('runs from the first stop to the last, clamped', () => {
    expect(sequential(0)).toBe('rgb(68, 1, 84)');
    expect(sequential(1)).toBe('rgb(253, 231, 37)');
    expect(sequential(-3)).toBe(sequential(0));
    expect(sequential(NaN)).toBe(sequential(0));
    // Halfway is the middle stop exactly (5 stops: index 2).
    expect(sequential(0.5)).toBe('rgb(33, 145, 140)');
    // A quarter of the way between stops 0 and 1 at t = 1/16: 68 + (59 − 68)·0.25 = 65.75 → 66.
    expect(sequential(1 / 16)).toBe('rgb(66, 21, 98)');
  });
  it('finds the extent of finite values and widens a flat map', () => {
    expect(extent([3, -1, NaN, 2])).toEqual([-1, 3]);
    expect(extent([0.5, 0.5])).toEqual([0.5, 1.5]);
    expect(extent([])).toEqual([0, 1]);
  });
  it('formats values with three significant digits', () => {
    expect(formatValue(0.031249)).toBe('0.0312');
    expect(formatValue(12345)).toBe('12300');
    expect(formatValue(0.00012)).toBe('1.20e-4');
    expect(formatValue(0)).toBe('0');
  });
  it('tells a flat map from a varying one', () => {
    expect(constantValue([0, 0, NaN, 0])).toBe(0);
    expect(constantValue([0, 0.5])).toBeNull();
    expect(constantValue([])).toBeNull();
  });
});
