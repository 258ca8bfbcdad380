import { describe, expect, it } from 'vitest';
import { classColour, formatBytes, formatCount, formatDuration, formatMs, nameColour } from './format';

describe('format', () => {
  it('formats counts with SI units', () => {
    expect(formatCount(3_786_068)).toBe('3.79 M');
    expect(formatCount(2_090_000_000)).toBe('2.09 G');
    expect(formatCount(999)).toBe('999');
    expect(formatCount(1500)).toBe('1.50 k');
  });
  it('formats bytes in binary units', () => {
    expect(formatBytes(7_574_558)).toBe('7.2 MiB');
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(2048)).toBe('2.0 KiB');
  });
  it('formats durations', () => {
    expect(formatMs(12.4)).toBe('12 ms');
    expect(formatMs(1530)).toBe('1.53 s');
  });
  it('gives neighbouring classes distinct hues', () => {
    expect(classColour(0)).toBe('hsl(0 85% 55%)');
    expect(classColour(1)).toBe('hsl(138 85% 55%)');
  });
  it('formats durations in h/min/s', () => {
    expect(formatDuration(12.4)).toBe('12 s');
    expect(formatDuration(185)).toBe('3 min 05 s');
    expect(formatDuration(3720)).toBe('1 h 02 min');
    expect(formatDuration(NaN)).toBe('–');
  });
  it('colours a class name the same whatever its index', () => {
    expect(nameColour('person')).toBe(nameColour('person'));
    expect(nameColour('person')).not.toBe(nameColour('boat'));
  });
});
