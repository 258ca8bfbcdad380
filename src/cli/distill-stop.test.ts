import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FIXTURE_DIR } from './node-lab';

const root = new URL('../../', import.meta.url).pathname;
const made: string[] = [];
afterEach(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('npm run distill and Ctrl-C', () => {
  // A terminal's Ctrl-C signals the whole foreground process group (npm, its shell and the
  // command) while a training step runs for a long stretch without returning to the event loop.
  // Under a launcher that relays the signal and kills a command that does not answer within
  // milliseconds, the run died without its checkpoint; the command must stop after the step.
  it('stops after the current step on SIGINT to the process group, evaluates and writes its checkpoint', async () => {
    const out = mkdtempSync(join(tmpdir(), 'distill-stop-'));
    made.push(out);
    const child = spawn('npm', ['run', '--silent', 'distill', '--', '--data', FIXTURE_DIR, '--methods', 'kd', '--steps', '500', '--input-size', '320', '--out', out, '--overwrite'], {
      cwd: root,
      detached: true, // its own process group, as a terminal's foreground job
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const trained = new Promise<void>((resolve) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (/\] 10\/500 /.test(stderr)) resolve();
      });
    });
    // Closed: every process holding its output (npm re-raises the signal; the command goes on) has ended.
    const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
    await Promise.race([trained, closed]);
    // Into the next step's arithmetic.
    await new Promise((r) => setTimeout(r, 150));
    process.kill(-child.pid!, 'SIGINT');
    await closed;
    expect(stderr).toContain('Stopping after this step');
    expect(stdout).toMatch(/kd, \d+ steps \(stopped\)/);
    expect(existsSync(join(out, 'checkpoint.dlc'))).toBe(true);
  }, 180_000);
});
