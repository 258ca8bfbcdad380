import { describe, expect, it } from 'vitest';
import { termLabel } from './term-names';

describe('loss-term names', () => {
  it('tells the total, a weighted method loss and its raw parts apart', () => {
    expect(termLabel('loss')).toEqual({ kind: 'total', text: 'total loss' });
    expect(termLabel('kd')).toEqual({ kind: 'weighted', text: 'kd · weighted' });
    expect(termLabel('kd/kd')).toEqual({ kind: 'raw', text: 'kd › kd term · raw' });
    expect(termLabel('kd/divergence')).toEqual({ kind: 'raw', text: 'kd › divergence · raw' });
    expect(termLabel('detection/qfl').text).toBe('detection › qfl · raw');
    expect(termLabel('head-mimic').kind).toBe('weighted');
  });
});
