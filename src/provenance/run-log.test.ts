import { describe, expect, it } from 'vitest';
import { csvColumns, logRow, parseJsonLines, toCsv, toJsonLines } from './run-log';

const step = (n: number, extra: Partial<Parameters<typeof logRow>[0]> = {}) =>
  logRow({ step: n, epoch: 1, lr: 1e-4, loss: 2.5 - n / 10, terms: { gfl: 1.5, kd: 1.0 - n / 10 }, gradNorm: 3.25, applied: true, pseudoBoxes: 0, msPerStep: 812.6, ...extra });

describe('the run log', () => {
  it('keeps log.jsonl keys in order and rounds the milliseconds', () => {
    const row = step(1, { gradientNorms: { gfl: 2, kd: 0.5 } });
    expect(Object.keys(row)).toEqual(['step', 'epoch', 'lr', 'loss', 'terms', 'gradNorm', 'gradientNorms', 'applied', 'pseudoBoxes', 'ms']);
    expect(row.ms).toBe(813);
    expect(Object.keys(step(2))).not.toContain('gradientNorms');
  });

  it('writes JSON lines that read back the same', () => {
    const rows = [step(1), step(2)];
    const text = toJsonLines(rows);
    expect(text.split('\n')).toHaveLength(3);
    expect(text.split('\n')[0]).toBe('{"step":1,"epoch":1,"lr":0.0001,"loss":2.4,"terms":{"gfl":1.5,"kd":0.9},"gradNorm":3.25,"applied":true,"pseudoBoxes":0,"ms":813}');
    expect(parseJsonLines(text)).toEqual(rows);
    expect(() => parseJsonLines('{"step":1}\n{broken')).toThrow(/log line 2 is not JSON/);
  });

  it('writes CSV with every term and every measured part as columns', () => {
    const rows = [step(1, { gradientNorms: { gfl: 2, kd: 0.5 } }), step(2, { applied: false, terms: { gfl: 1.4, kd: 0.8, 'kd.divergence': 0.1 } })];
    expect(csvColumns(rows)).toEqual(['step', 'epoch', 'lr', 'loss', 'terms.gfl', 'terms.kd', 'terms.kd.divergence', 'gradNorm', 'gradientNorms.gfl', 'gradientNorms.kd', 'applied', 'pseudoBoxes', 'ms']);
    const lines = toCsv(rows).trimEnd().split('\n');
    expect(lines[1]).toBe('1,1,0.0001,2.4,1.5,0.9,,3.25,2,0.5,true,0,813');
    expect(lines[2]).toBe('2,1,0.0001,2.3,1.4,0.8,0.1,3.25,,,false,0,813');
  });
});
