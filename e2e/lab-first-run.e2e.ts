import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadFixture, openLab, root, type Lab } from './harness';

const shots = join(root, 'test-results');
mkdirSync(shots, { recursive: true });

// A first visit on a 1024 px wide window: the path to a first run, Train within reach and saying
// why it waits, the schedule's steps and time beside it.
describe('the first run at 1024 px (wasm backend)', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await openLab('?backend=wasm');
    await lab.page.setViewportSize({ width: 1024, height: 768 });
  });
  afterAll(async () => {
    if (lab) console.log(lab.logs.filter((l) => /error|warn/i.test(l)).slice(-20).join('\n'));
    await lab?.close();
  });

  it('shows the path with the next step highlighted, and Train says why it waits', async () => {
    const { page } = lab;
    await page.getByTestId('student-name').waitFor({ timeout: 120_000 });
    await page.getByTestId('teacher-name').waitFor({ timeout: 120_000 });
    // The header is one line.
    const header = (await page.locator('.app header').boundingBox())!;
    expect(header.height).toBeLessThan(60);
    const h1 = (await page.locator('.app header h1').boundingBox())!;
    const status = (await page.getByTestId('status-bar').boundingBox())!;
    expect(Math.abs(h1.y + h1.height / 2 - (status.y + status.height / 2))).toBeLessThan(12);
    expect(await page.getByTestId('path-models').getAttribute('data-state')).toBe('done');
    expect(await page.getByTestId('path-data').getAttribute('data-state')).toBe('next');
    expect(await page.getByTestId('path-train').getAttribute('data-state')).toBe('todo');
    expect(await page.getByTestId('train').isDisabled()).toBe(true);
    expect(await page.getByTestId('train-why').textContent()).toBe('Load a VOC folder or archive (step 2).');
    expect(await page.getByTestId('schedule-plan').textContent()).toMatch(/once the data is loaded/);
    await page.screenshot({ path: join(shots, 'lab-first-run-1024.png') });
  });

  it('keeps Train near the top: compact methods, schedule beside it with steps and time', async () => {
    const { page } = lab;
    await loadFixture(page);
    expect(await page.getByTestId('path-data').getAttribute('data-state')).toBe('done');
    expect(await page.getByTestId('path-train').getAttribute('data-state')).toBe('next');
    expect(await page.getByTestId('train-why').count()).toBe(0);
    const top = await page.getByTestId('train').evaluate((e) => e.getBoundingClientRect().top + window.scrollY);
    expect(top).toBeLessThan(1900);
    // Methods are one line each; the explanation and paper on demand.
    const kd = page.getByTestId('method-kd');
    expect((await kd.boundingBox())!.height).toBeLessThan(44);
    expect(await kd.locator('.citation').count()).toBe(0);
    await page.getByTestId('method-details-kd').click();
    expect(await kd.locator('.citation').textContent()).toMatch(/Hinton/);
    await page.getByTestId('method-details-kd').click();
    // The schedule: steps as the trainer counts them, and a time.
    await page.getByTestId('max-train-images').fill('6');
    await page.getByTestId('schedule-batchSize').fill('2');
    await page.getByTestId('schedule-epochs').fill('3');
    expect(await page.getByTestId('schedule-plan').textContent()).toMatch(/^6 images ÷ batch 2 = 3 steps per epoch × 3 = 9 steps · about \d+/);
    expect(await page.getByTestId('schedule-plan').textContent()).toMatch(/rough, from the models’ MACs/);
    await page.getByTestId('schedule-batchSize').fill('8');
    expect(await page.getByTestId('train-why').textContent()).toMatch(/fewer than one batch of 8/);
    await page.getByTestId('schedule-batchSize').fill('2');
    // The skip link goes to Train: the page's first focusable element, shown when focused.
    const first = await page.evaluate(() => document.querySelector('a[href], button, input, select')?.getAttribute('data-testid'));
    expect(first).toBe('skip-to-train');
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.getByTestId('skip-to-train').focus();
    expect((await page.getByTestId('skip-to-train').boundingBox())!.y).toBeGreaterThanOrEqual(0);
    await page.keyboard.press('Enter');
    expect(new URL(page.url()).hash).toBe('#train');
    const train = (await page.getByTestId('train').boundingBox())!;
    expect(train.y).toBeGreaterThanOrEqual(0);
    expect(train.y).toBeLessThan(768);
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: join(shots, 'lab-first-run-1024-data.png'), fullPage: true });
  });
});
