import { describe, expect, it } from 'vitest';
import { parseCli, UsageError } from './args';
import { defaultWasmThreads } from './wasm-threads';

/** The first line of the usage error parseCli throws for these arguments (every refusal is a UsageError). */
function err(args: string[]): string {
  try {
    parseCli(args);
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message.split('\n')[0]!;
  }
  return 'no error';
}

describe('parseCli', () => {
  it('builds an experiment from flags over the defaults', () => {
    const o = parseCli(['--data', 'voc', '--methods', 'kd,fgd', '--scale', 'fgd=2', '--epochs', '3', '--input-size', '320', '--lr', '5e-4'], new Date('2026-01-02T03:04:05Z'));
    expect(o.dataDir).toBe('voc');
    expect(o.outDir).toBe('runs/2026-01-02T03-04-05');
    expect(o.config.methods).toEqual([{ id: 'kd' }, { id: 'fgd', scale: 2 }]);
    expect(o.config.schedule).toMatchObject({ epochs: 3, inputSize: 320, lr: 5e-4, batchSize: 4, optimizer: 'adam' });
    expect(o.config.detectionWeight).toBe(1);
    expect(o.overwrite).toBe(false);
    expect(parseCli(['--data', 'voc', '--out', 'runs/a', '--overwrite']).overwrite).toBe(true);
    // SGD gets an L2 decay that does not outweigh its gradients, unless one is given.
    expect(o.config.schedule.weightDecay).toBe(0.05);
    expect(parseCli(['--data', 'voc', '--optimizer', 'sgd']).config.schedule.weightDecay).toBe(1e-4);
    expect(parseCli(['--data', 'voc', '--optimizer', 'sgd', '--weight-decay', '0']).config.schedule.weightDecay).toBe(0);
    expect(parseCli(['--data', 'voc', '--gradient-norms-every', '5']).config.gradientNormsEvery).toBe(5);
    expect(o.config.gradientNormsEvery).toBe(25);
    expect(parseCli(['--data', 'voc', '--eval-every', '10']).evalEvery).toBe(10);
    expect(o.evalEvery).toBe(0);
    expect(o.config.trainOnly).toBeUndefined();
    expect(o.config.schedule.ema).toBeUndefined();
    expect(parseCli(['--data', 'voc', '--ema', '0.99']).config.schedule.ema).toBe(0.99);
    expect(o.config.schedule.cropScale).toBeUndefined();
    expect(parseCli(['--data', 'voc', '--crop-scale', '0.6']).config.schedule.cropScale).toBe(0.6);
    expect(parseCli(['--data', 'voc', '--annotated-per-batch', '2']).config.data.annotatedPerBatch).toBe(2);
    expect(parseCli(['--data', 'voc', '--train-only', 'split_(29|31|33)$']).config.trainOnly).toBe('split_(29|31|33)$');
  });
  it('takes the data folder from a saved config when --data is not given', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const { defaultExperiment } = await import('../train/config');
    const file = join(mkdtempSync(join(tmpdir(), 'args-')), 'config.json');
    writeFileSync(file, JSON.stringify({ ...defaultExperiment(), data: { source: 'VOCdevkit', trainSplit: 'train', valSplit: 'val' } }));
    expect(parseCli(['--config', file]).dataDir).toBe('VOCdevkit');
    expect(parseCli(['--config', file, '--data', 'other']).dataDir).toBe('other');
  });
  it('takes --threads as a count or "all", and refuses the rest before anything runs', () => {
    expect(parseCli(['--data', 'voc', '--threads', '2']).threads).toBe(2);
    expect(parseCli(['--data', 'voc']).threads).toBe(defaultWasmThreads());
    expect(parseCli(['--data', 'voc', '--threads', 'all']).threads).toBe(defaultWasmThreads());
    expect(() => parseCli(['--data', 'voc', '--threads', '0'])).toThrow(UsageError);
    expect(() => parseCli(['--data', 'voc', '--threads', '0'])).toThrow('--threads takes a whole number from 1 to 8, or "all", not "0".');
  });
  it('takes --teacher-cache in MiB, 512 by default and 0 for none, and refuses a negative size', () => {
    expect(parseCli(['--data', 'voc']).teacherCacheMiB).toBe(512);
    expect(parseCli(['--data', 'voc', '--teacher-cache', '0']).teacherCacheMiB).toBe(0);
    expect(parseCli(['--data', 'voc', '--teacher-cache', '1536']).teacherCacheMiB).toBe(1536);
    expect(() => parseCli(['--data', 'voc', '--teacher-cache=-1'])).toThrow('--teacher-cache must be a size in MiB >= 0, got "-1".');
  });
  it('refuses a --train-only that is not a regular expression', () => {
    expect(() => parseCli(['--data', 'voc', '--train-only', 'split_(29'])).toThrow(/"trainOnly" is not a regular expression/);
  });
  it('gives clear usage errors', () => {
    expect(err([])).toBe('--data is required (a folder with VOCdevkit/VOC20xx, or a year folder).');
    expect(err(['--data', 'x', '--methods', 'kd,magic'])).toMatch(/^Unknown method "magic". Known: kd, fgfi, fgd, pfi, head-mimic, rm, ld, hints\./);
    expect(err(['--data', 'x', '--input-size', '300'])).toBe('--input-size must be a multiple of 32, got "300".');
    expect(err(['--data', 'x', '--scale', 'fgd=2'])).toBe('--scale names "fgd", which is not among the chosen methods.');
    expect(err(['--data', 'x', '--detection-weight', '0'])).toBe('Nothing to train: no method chosen and --detection-weight 0.');
    expect(err(['--data', 'x', '--bogus'])).toMatch(/Unknown option '--bogus'/);
    expect(err(['--data', 'x', '--eval-every=2.5'])).toBe('--eval-every must be an integer >= 0, got "2.5".');
    expect(err(['--data', 'x', '--ema', '1'])).toBe('--ema must be a decay in [0, 1), got "1".');
    expect(err(['--data', 'x', '--crop-scale', '0'])).toBe('--crop-scale must be a fraction in (0, 1], got "0".');
    expect(err(['--data', 'x', '--backend', 'cuda'])).toBe('--backend is wasm or webgpu, not "cuda".');
    const resumeLength = "--resume continues the checkpoint's run to its own length (its config is used); --steps and --epochs cannot change it. To train longer, start a new run with --steps.";
    expect(err(['--resume', 'run/checkpoint.dlc', '--steps', '5'])).toBe(resumeLength);
    expect(err(['--data', 'x', '--resume', 'run/checkpoint.dlc', '--epochs', '2'])).toBe(resumeLength);
    expect(err(['--resume', 'run/checkpoint.dlc'])).toBe('no error');
  });
  it('trains on wasm unless --backend says webgpu', () => {
    expect(parseCli(['--data', 'voc']).backend).toBe('wasm');
    expect(parseCli(['--data', 'voc', '--backend', 'webgpu']).backend).toBe('webgpu');
  });
  it('reads --prune-plan from a derivation record into the config, and refuses what cannot fade', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'args-'));
    const plan = join(dir, 'derivation.json');
    writeFileSync(plan, JSON.stringify({ report: { units: [{ producer: 'conv_1', kept: 2, channels: 4, keep: [0, 3] }, { producer: 'conv_2', kept: 8, channels: 8 }] } }));
    expect(parseCli(['--data', 'voc', '--steps', '300', '--prune-plan', plan]).config.prune).toEqual({ keep: { conv_1: [0, 3] }, fadeSteps: 150 });
    expect(parseCli(['--data', 'voc', '--prune-plan', plan, '--fade-steps', '40']).config.prune).toEqual({ keep: { conv_1: [0, 3] }, fadeSteps: 40 });
    expect(err(['--data', 'voc', '--prune-plan', plan])).toBe('--prune-plan needs --steps (the fade takes half of them) or --fade-steps.');
    expect(err(['--data', 'voc', '--fade-steps', '10'])).toBe('--fade-steps needs --prune-plan.');
    expect(err(['--data', 'voc', '--steps', '10', '--prune-plan', join(dir, 'missing.json')])).toMatch(/^Cannot read the channel plan .*missing\.json/);
    const old = join(dir, 'old.json');
    writeFileSync(old, JSON.stringify({ report: { units: [{ producer: 'conv_1', kept: 2, channels: 4 }] } }));
    expect(err(['--data', 'voc', '--steps', '10', '--prune-plan', old])).toMatch(/does not list the channels "conv_1" keeps/);
    const bad = join(dir, 'config.json');
    writeFileSync(bad, JSON.stringify({ configVersion: 1 }));
    expect(err(['--data', 'voc', '--steps', '10', '--prune-plan', bad])).toMatch(/is not a derivation record/);
  });
});

