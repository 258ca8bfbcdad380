import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadFixture, openLab, root, type Lab } from './harness';

const shots = join(root, 'test-results');
mkdirSync(shots, { recursive: true });

const count = (text: string | null) => {
  const m = /([\d.]+)\s*([kMG]?)/.exec(text ?? '');
  return m ? Number(m[1]) * ({ '': 1, k: 1e3, M: 1e6, G: 1e9 } as Record<string, number>)[m[2]!]! : NaN;
};

// The least-squares fits run on the host whatever the backend; wasm keeps the forwards quick.
describe('deriving a student from the loaded photos (wasm backend)', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await openLab('?backend=wasm');
  });
  afterAll(async () => {
    if (lab) console.log(lab.logs.filter((l) => /error|warn/i.test(l)).slice(-20).join('\n'));
    await lab?.close();
  });

  it('says why it waits for photos, derives a smaller student from them, and keeps it across a reload', async () => {
    const { page } = lab;
    await page.getByTestId('student-name').waitFor({ timeout: 120_000 });
    expect(await page.getByTestId('derive-button').isDisabled()).toBe(true);
    expect(await page.getByTestId('derive-why').textContent()).toMatch(/Load your photos/);
    // The install-time student was not derived from photos, and the panel says so.
    await page.getByTestId('student-uncalibrated').waitFor();
    const teacherMacs = count(await page.getByTestId('teacher-macs').textContent());

    await loadFixture(page);
    await page.getByTestId('derive-images').fill('8');
    await page.getByTestId('derive-size').fill('64');
    await page.getByTestId('derive-button').click();
    await page.getByTestId('derive-result').waitFor({ timeout: 280_000 });
    const result = await page.getByTestId('derive-result').textContent();
    expect(result).toMatch(/refit on 8 photos at 64²/);
    expect(await page.getByTestId('student-name').textContent()).toMatch(/pruned to 60% MACs, 20 classes/);
    const studentMacs = count(await page.getByTestId('student-macs').textContent());
    expect(studentMacs / teacherMacs).toBeLessThanOrEqual(0.61);
    expect(studentMacs / teacherMacs).toBeGreaterThan(0.5);
    expect(await page.getByTestId('student-uncalibrated').count()).toBe(0);
    await page.getByTestId('derive-panel').screenshot({ path: join(shots, 'lab-derived.png') });

    await page.reload();
    await page.getByTestId('student-name').filter({ hasText: /pruned to 60% MACs/ }).waitFor({ timeout: 120_000 });
  });
});
