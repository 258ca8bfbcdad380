import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configureSmallRun, loadFixture, openLab, root, waitForStep, type Lab } from './harness';

const shots = join(root, 'test-results');
mkdirSync(shots, { recursive: true });

// Numbers that mean something at every moment of a run, inspection maps that say what they show,
// and a second run that does not throw the first away unasked. On wasm (fast on these CPUs).
describe('honest numbers and runs that are kept (wasm backend)', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await openLab('?backend=wasm');
  });
  afterAll(async () => {
    if (lab) console.log(lab.logs.filter((l) => /error|warn/i.test(l)).slice(-20).join('\n'));
    await lab?.close();
  });

  it('shows no NaN before the first step, says paused while paused', async () => {
    const { page } = lab;
    await loadFixture(page);
    expect(await page.getByTestId('train-loss').textContent()).toBe('—');
    expect(await page.getByTestId('train-grad-norm').textContent()).toBe('—');
    expect(await page.getByTestId('train-eta').textContent()).toBe('—');
    // Every text the loss, grad norm and status bar take during the run, from the first frame on.
    await page.evaluate(() => {
      const seen = new Set<string>();
      (window as unknown as { __seen: Set<string> }).__seen = seen;
      const read = () => {
        for (const id of ['train-loss', 'train-grad-norm', 'train-rate', 'train-eta', 'status-run']) seen.add(document.querySelector(`[data-testid="${id}"]`)?.textContent ?? '');
      };
      new MutationObserver(read).observe(document.body, { subtree: true, childList: true, characterData: true });
    });
    await configureSmallRun(page, { methods: ['kd'], images: 6 });
    await page.getByTestId('train').click();
    await waitForStep(page, 2);
    await page.getByTestId('pause').click();
    await page.getByTestId('train-status').filter({ hasText: /^paused$/ }).waitFor({ timeout: 120_000 });
    expect(await page.getByTestId('train-rate').textContent()).toBe('paused');
    expect(await page.getByTestId('train-eta').textContent()).toBe('paused');
    expect(await page.getByTestId('train-loss').textContent()).toMatch(/^\d/);
    const seen = await page.evaluate(() => [...(window as unknown as { __seen: Set<string> }).__seen]);
    expect(seen.filter((s) => /NaN/.test(s))).toEqual([]);
    expect(seen).toContain('compiling…');
    await page.getByTestId('training-panel').screenshot({ path: join(shots, 'lab-paused.png') });
  });

  it('labels inspection maps with their image and step, and marks them stale when the selection changes', async () => {
    const { page } = lab;
    await page.getByTestId('inspect-image').selectOption('2007_000061');
    await page.getByTestId('inspect').click();
    await page.getByTestId('inspect-summary').waitFor({ timeout: 120_000 });
    const step = Number((await page.getByTestId('train-step').textContent())!.split('/')[0]);
    const source = page.getByTestId('maps-kd').getByTestId('map-source');
    expect(await source.textContent()).toBe(`2007_000061 (train) · 64² · student at step ${step}`);
    // KD's default mode is BCE: the maps say so.
    expect(await page.getByTestId('maps-kd').locator('h3').textContent()).toMatch(/^Soft-label KD \(BCE mode\)/);
    expect(await page.getByTestId('inspect-stale').count()).toBe(0);
    await page.getByTestId('inspect-image').selectOption('2007_000027');
    await page.getByTestId('inspect-stale').waitFor();
    expect(await page.getByTestId('inspect-stale').textContent()).toMatch(/These maps show 2007_000061 \(train\).*but 2007_000027 \(train\) is selected now/);
    expect(await page.getByTestId('inspection').getAttribute('data-stale')).toBe('true');
    await page.getByTestId('inspect-panel').screenshot({ path: join(shots, 'lab-inspect-stale.png') });
    // Training on marks them stale too.
    await page.getByTestId('inspect-image').selectOption('2007_000061');
    expect(await page.getByTestId('inspect-stale').count()).toBe(0);
    await page.getByTestId('resume').click();
    await waitForStep(page, step + 1);
    await page.getByTestId('inspect-stale').filter({ hasText: /the student has trained since/ }).waitFor();
  });

  it('asks before a new run replaces a stopped one, names what it replaces, and keeps its curves for comparison', async () => {
    const { page } = lab;
    await page.getByTestId('stop').click();
    await page.getByTestId('train-status').filter({ hasText: /^stopped$/ }).waitFor({ timeout: 120_000 });
    const stoppedAt = Number((await page.getByTestId('train-step').textContent())!.split('/')[0]);
    const checkpoint = await page.getByTestId('checkpoint-info').textContent();
    expect(checkpoint).toMatch(new RegExp(`Checkpoint: step ${stoppedAt} of 6`));
    const curve = await page.locator('[data-term="loss"]').getAttribute('data-points');
    expect(Number(curve)).toBe(stoppedAt);
    // Resume stays offered beside Train.
    expect(await page.getByTestId('resume-checkpoint').textContent()).toBe(`Resume from step ${stoppedAt}`);
    expect(await page.getByTestId('train').textContent()).toBe('Train a new run');
    await page.getByTestId('train').click();
    const confirm = page.getByTestId('train-confirm');
    await confirm.waitFor();
    const text = await confirm.textContent();
    expect(text).toMatch(new RegExp(`the student's weights after ${stoppedAt} steps`));
    expect(text).toMatch(new RegExp(`the loss curves of steps 1–${stoppedAt}`));
    expect(text).toMatch(new RegExp(`the checkpoint of step ${stoppedAt} of 6 saved in this browser`));
    expect(await page.getByTestId('train-confirm-resume').textContent()).toBe(`Resume from step ${stoppedAt} instead`);
    await page.getByTestId('training-panel').screenshot({ path: join(shots, 'lab-train-confirm.png') });
    // Cancel changes nothing.
    await page.getByTestId('train-confirm-cancel').click();
    expect(await confirm.count()).toBe(0);
    expect(await page.getByTestId('train-status').textContent()).toBe('stopped');
    expect(await page.getByTestId('checkpoint-info').textContent()).toBe(checkpoint);
    expect(await page.locator('[data-term="loss"]').getAttribute('data-points')).toBe(curve);
    // Saying yes starts a new run from step 0; the replaced run's curves stay, dashed.
    await page.getByTestId('train').click();
    await page.getByTestId('train-confirm-new').click();
    await page.getByTestId('train-status').filter({ hasText: /^finished$/ }).waitFor({ timeout: 120_000 });
    expect(await page.getByTestId('train-step').textContent()).toBe('6 / 6');
    expect(await page.getByTestId('previous-run').textContent()).toMatch(new RegExp(`previous run \\(steps 1–${stoppedAt}\\)`));
    expect(Number(await page.locator('[data-term="loss"]').getAttribute('data-previous-points'))).toBe(stoppedAt);
    expect(await page.locator('[data-term="loss"] path.previous-run').count()).toBe(1);
    await page.getByTestId('training-panel').screenshot({ path: join(shots, 'lab-previous-run.png') });
  });
});
