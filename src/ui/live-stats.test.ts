import { describe, expect, it } from 'vitest';
import { cacheText, rateText, stepValueText, timeLeftText } from './live-stats';

describe('training numbers as text', () => {
  it('shows no NaN before the first step: compiling while the run starts, a dash otherwise', () => {
    expect(stepValueText(NaN, { status: 'idle', stepsSeen: 0 })).toBe('—');
    expect(stepValueText(NaN, { status: 'starting', stepsSeen: 0 })).toBe('compiling…');
    expect(stepValueText(NaN, { status: 'running', stepsSeen: 0 })).toBe('compiling…');
    expect(stepValueText(0.03125, { status: 'running', stepsSeen: 1 })).toBe('0.0313');
    // A loss restored with a checkpoint's curves after a reload is a real number.
    expect(stepValueText(1.25, { status: 'idle', stepsSeen: 0 })).toBe('1.25');
  });
  it('keeps a non-finite value that a step really produced', () => {
    expect(stepValueText(NaN, { status: 'running', stepsSeen: 4 })).toBe('NaN');
    expect(stepValueText(Infinity, { status: 'error', stepsSeen: 4 })).toBe('Infinity');
  });
  it('says paused instead of a frozen rate and time left', () => {
    expect(rateText(3.5, { status: 'paused', stepsSeen: 3 })).toBe('paused');
    expect(timeLeftText(42, 800, { status: 'paused', stepsSeen: 3 })).toBe('paused');
    expect(rateText(3.5, { status: 'running', stepsSeen: 3 })).toBe('3.50');
    expect(timeLeftText(185, 800, { status: 'running', stepsSeen: 3 })).toBe('3 min 05 s');
  });
  it('has no time left once the run is over or before it starts', () => {
    expect(timeLeftText(0, 800, { status: 'finished', stepsSeen: 3 })).toBe('done');
    expect(timeLeftText(12, 800, { status: 'stopped', stepsSeen: 3 })).toBe('—');
    expect(timeLeftText(0, 0, { status: 'idle', stepsSeen: 0 })).toBe('—');
    expect(timeLeftText(0, 0, { status: 'starting', stepsSeen: 0 })).toBe('compiling…');
    expect(rateText(0, { status: 'idle', stepsSeen: 0 })).toBe('—');
  });

  it('says what share of the teacher reads its cache served, and what it holds', () => {
    expect(cacheText({ hits: 0, misses: 4, entries: 4, bytes: 5 * 2 ** 20 })).toBe('0% · 4 img · 5 MiB');
    expect(cacheText({ hits: 236, misses: 124, entries: 124, bytes: 148.6 * 2 ** 20 })).toBe('66% · 124 img · 149 MiB');
    expect(cacheText({ hits: 0, misses: 0, entries: 0, bytes: 0 })).toBe('— · 0 img · 0 MiB');
  });
});
