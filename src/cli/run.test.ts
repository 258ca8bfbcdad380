import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultExperiment, type ExperimentConfig } from '../train/config';
import { FIXTURE_DIR } from './node-lab';
import { runExperiment } from './run';

const made: string[] = [];
/** A folder holding a finished run's config.json and log.jsonl. */
function existingRun(): string {
  const dir = mkdtempSync(join(tmpdir(), 'distill-run-'));
  made.push(dir);
  writeFileSync(join(dir, 'config.json'), '{"old": true}\n');
  writeFileSync(join(dir, 'log.jsonl'), '{"step":1,"loss":2}\n');
  return dir;
}
const untouched = (dir: string) => [readFileSync(join(dir, 'config.json'), 'utf8'), readFileSync(join(dir, 'log.jsonl'), 'utf8')];
const withSplits = (trainSplit: string, valSplit: string): ExperimentConfig => {
  const c = defaultExperiment();
  return { ...c, data: { ...c.data, trainSplit, valSplit } };
};

afterEach(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('runExperiment checks everything before writing to --out', () => {
  it('a mistyped --val-split fails and leaves the run folder it points at as it was, even with overwrite', async () => {
    const dir = existingRun();
    await expect(runExperiment({ config: withSplits('train', 'vall'), dataDir: FIXTURE_DIR, outDir: dir, overwrite: true })).rejects.toThrow(
      'Split "vall" not found in',
    );
    await expect(runExperiment({ config: withSplits('train', 'vall'), dataDir: FIXTURE_DIR, outDir: dir, overwrite: true })).rejects.toThrow(/has: train, trainval, val\)/);
    expect(untouched(dir)).toEqual(['{"old": true}\n', '{"step":1,"loss":2}\n']);
  });

  it('takes a fold of an existing split, and refuses a fold of a missing split or a fold that cannot exist', async () => {
    const dir = existingRun();
    await expect(runExperiment({ config: withSplits('trainval/without-fold-1-of-3', 'trainvall/fold-1-of-3'), dataDir: FIXTURE_DIR, outDir: dir, overwrite: true })).rejects.toThrow(
      'Split "trainvall/fold-1-of-3" not found in',
    );
    await expect(runExperiment({ config: withSplits('trainval/without-fold-4-of-3', 'trainval/fold-1-of-3'), dataDir: FIXTURE_DIR, outDir: dir, overwrite: true })).rejects.toThrow(
      'fold 4 does not exist',
    );
    expect(untouched(dir)).toEqual(['{"old": true}\n', '{"step":1,"loss":2}\n']);
  });

  it('refuses a non-empty --out without --resume or --overwrite', async () => {
    const dir = existingRun();
    await expect(runExperiment({ config: withSplits('train', 'val'), dataDir: FIXTURE_DIR, outDir: dir })).rejects.toThrow(
      /is not empty \(config\.json, log\.jsonl\): pass --overwrite to replace its run, or --resume <checkpoint> to continue it/,
    );
    expect(untouched(dir)).toEqual(['{"old": true}\n', '{"step":1,"loss":2}\n']);
  });

  it('an unreadable data folder or a missing manifest fails before the output folder is made', async () => {
    const parent = mkdtempSync(join(tmpdir(), 'distill-run-'));
    made.push(parent);
    const out = join(parent, 'new-run');
    await expect(runExperiment({ config: withSplits('train', 'val'), dataDir: join(parent, 'no-such-voc'), outDir: out })).rejects.toThrow(/cannot be read/);
    const badStudent = { ...withSplits('train', 'val'), student: 'no-such.manifest.json' };
    await expect(runExperiment({ config: badStudent, dataDir: FIXTURE_DIR, outDir: out })).rejects.toThrow(/The student manifest "no-such.manifest.json" cannot be read/);
    expect(existsSync(out)).toBe(false);
  });
});
