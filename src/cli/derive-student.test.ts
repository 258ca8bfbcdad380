import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = new URL('../../', import.meta.url).pathname;
const unlabeled = new URL('../../../shared/voc-unlabeled', import.meta.url).pathname;

function deriveStudentCli(args: string[]) {
  return spawnSync(join(root, 'node_modules/.bin/tsx'), [join(root, 'src/cli/derive-student.ts'), ...args], { cwd: root, timeout: 120_000, encoding: 'utf8' });
}

describe('derive-student: choosing among candidates', () => {
  const out = () => join(mkdtempSync(join(tmpdir(), 'derive-cli-')), 'student');

  it('asks for annotated images to choose on', () => {
    const run = deriveStudentCli(['--calibration', unlabeled, '--out', out(), '--candidates', '2']);
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('--candidates needs --choose-on: annotated VOC images to choose the best candidate on.');
  });

  it('says how many photos the candidates need before deriving anything', { timeout: 120_000 }, () => {
    // voc-unlabeled holds 160 photos: six sets of 32 need 192.
    const run = deriveStudentCli(['--calibration', unlabeled, '--out', out(), '--candidates', '6', '--choose-on', join(unlabeled, '..', 'voc-fixture')]);
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('6 candidates of 32 photos each need 192 photos; 160 are available.');
    expect(run.stdout).not.toContain('Deriving');
  });
});
