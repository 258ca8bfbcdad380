import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLab, root, unstickHeader, type Lab } from './harness';

const shots = join(root, 'test-results');
mkdirSync(shots, { recursive: true });

// Headless Chromium here offers WebGPU only on SwiftShader (a software adapter): the lab picks wasm
// by default and says why, and the backend panel switches to WebGPU and back.
describe('the backend choice with a software WebGPU adapter', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await openLab();
  });
  afterAll(async () => {
    if (lab) console.log(lab.logs.filter((l) => /error|warn/i.test(l)).slice(-20).join('\n'));
    await lab?.close();
  });

  it('prefers wasm over SwiftShader and says why', async () => {
    const { page } = lab;
    await unstickHeader(page);
    await page.getByTestId('teacher-name').waitFor({ timeout: 120_000 });
    expect(await page.getByTestId('backend-name').textContent()).toBe('wasm');
    expect(await page.getByTestId('attempt-webgpu').textContent()).toMatch(/webgpu passed over: it works here, but on a software renderer \(.*swiftshader.*\).*5–10x faster/i);
    expect(await page.getByTestId('attempt-wasm').textContent()).toMatch(/wasm in use/);
    // Cross-origin isolated, the threaded binary loads: one kernel thread per logical core.
    const cores = await page.evaluate(() => navigator.hardwareConcurrency);
    expect(await page.getByTestId('wasm-threads').textContent()).toBe(cores > 1 ? `${Math.min(cores, 8)} threads` : '1 thread');
    expect(await page.getByTestId('backend-source').textContent()).toMatch(/Chosen automatically/);
    expect(await page.getByTestId('backend-choice').inputValue()).toBe('auto');
    await page.getByTestId('backend-panel').screenshot({ path: join(shots, 'lab-backend-auto.png') });
  });

  it('switches to WebGPU in the panel, models loaded again, and keeps the choice across a reload', async () => {
    const { page } = lab;
    await page.getByTestId('backend-choice').selectOption('webgpu');
    await page.getByTestId('backend-name').filter({ hasText: /^webgpu$/ }).waitFor({ timeout: 120_000 });
    expect(await page.getByTestId('adapter-kind').textContent()).toBe('software (fallback) adapter');
    expect(await page.getByTestId('backend-source').textContent()).toMatch(/Chosen here \(webgpu\), kept in this browser/);
    await page.getByTestId('teacher-name').waitFor({ timeout: 120_000 });
    await page.getByTestId('student-name').waitFor({ timeout: 120_000 });
    await page.reload();
    await page.getByTestId('backend-name').waitFor({ timeout: 120_000 });
    expect(await page.getByTestId('backend-name').textContent()).toBe('webgpu');
    expect(await page.getByTestId('backend-choice').inputValue()).toBe('webgpu');
    await page.getByTestId('teacher-name').waitFor({ timeout: 120_000 });
    await page.getByTestId('student-name').waitFor({ timeout: 120_000 });
  });

  it('says when the address forces the backend, and choosing in the panel replaces it', async () => {
    const { page } = lab;
    await page.goto(`${lab.url}?backend=wasm`);
    await unstickHeader(page);
    await page.getByTestId('backend-name').waitFor({ timeout: 120_000 });
    expect(await page.getByTestId('backend-name').textContent()).toBe('wasm');
    expect(await page.getByTestId('backend-source').textContent()).toMatch(/Forced by \?backend=wasm in the address/);
    // The page settles once the models are in (the panels below the backend's stop moving).
    await page.getByTestId('teacher-name').waitFor({ timeout: 120_000 });
    await page.getByTestId('student-name').waitFor({ timeout: 120_000 });
    await page.getByTestId('backend-panel').screenshot({ path: join(shots, 'lab-backend-url.png') });
    await page.getByTestId('backend-choice').selectOption('auto');
    await page.getByTestId('backend-source').filter({ hasText: /Chosen automatically/ }).waitFor({ timeout: 120_000 });
    expect(new URL(page.url()).searchParams.has('backend')).toBe(false);
    expect(await page.getByTestId('backend-name').textContent()).toBe('wasm');
    await page.getByTestId('teacher-name').waitFor({ timeout: 120_000 });
  });
});
