import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configureSmallRun, loadFixture, openLab, root, waitForStep, type Lab } from './harness';

const shots = join(root, 'test-results');
/** One epoch over the fixture's 20 train images at batch 1. */
const RUN_STEPS = 20;
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
    // Every train image of the fixture: steps to spare between resuming and stopping below, so a
    // fast machine cannot finish the run before Stop is pressed.
    await configureSmallRun(page, { methods: ['kd'], images: RUN_STEPS });
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
    expect(checkpoint).toMatch(new RegExp(`Checkpoint: step ${stoppedAt} of ${RUN_STEPS}`));
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
    expect(text).toMatch(new RegExp(`the checkpoint of step ${stoppedAt} of ${RUN_STEPS} saved in this browser`));
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
    expect(await page.getByTestId('train-step').textContent()).toBe(`${RUN_STEPS} / ${RUN_STEPS}`);
    expect(await page.getByTestId('previous-run').textContent()).toMatch(new RegExp(`previous run \\(steps 1–${stoppedAt}\\)`));
    expect(Number(await page.locator('[data-term="loss"]').getAttribute('data-previous-points'))).toBe(stoppedAt);
    expect(await page.locator('[data-term="loss"] path.previous-run').count()).toBe(1);
    await page.getByTestId('training-panel').screenshot({ path: join(shots, 'lab-previous-run.png') });
  });

  it('draws every inspection map at 416 on a canvas (no thousands of rects), links hover across T and S, and shares their scale', async () => {
    const { page } = lab;
    await page.getByTestId('schedule-inputSize').selectOption('416');
    for (const m of ['fgfi', 'fgd', 'pfi', 'rm', 'ld', 'head-mimic']) await page.getByTestId(`method-toggle-${m}`).check();
    await page.getByTestId('inspect-image').selectOption('2007_000061');
    await page.getByTestId('inspect').click();
    await page.getByTestId('inspect-summary').filter({ hasText: /at 416²/ }).waitFor({ timeout: 240_000 });
    await page.getByTestId('maps-fgd').waitFor();
    const panel = page.getByTestId('inspect-panel');
    const heatmaps = await panel.getByTestId('heatmap').count();
    const cells = await panel.getByTestId('heatmap').evaluateAll((els) => els.reduce((n, e) => n + Number(e.getAttribute('data-cells')), 0));
    // Tens of thousands of cells, drawn as one canvas per map; the few SVG rects left are bars and boxes.
    expect(cells).toBeGreaterThan(20_000);
    expect(await panel.locator('[data-testid="heatmap"] canvas').count()).toBe(heatmaps);
    // Each colour scale is a 16-cell @visx heatmap; no map draws a rect per cell.
    expect(await panel.locator('.colour-scale rect').count()).toBe(16 * (await panel.locator('.colour-scale svg').count()));
    expect(await panel.locator('rect').count()).toBeLessThan(1500 + (await panel.locator('.colour-scale rect').count()));
    // FGD's spatial attention, stride 8 (52×52): T and S share one range by default.
    const fgd = page.getByTestId('maps-fgd');
    const t = fgd.locator('.map-row').filter({ hasText: 'spatial attention T' }).getByTestId('heatmap').first();
    const s = fgd.locator('.map-row').filter({ hasText: 'spatial attention S' }).getByTestId('heatmap').first();
    const range = async (h: typeof t) => [await h.getAttribute('data-min'), await h.getAttribute('data-max')];
    expect(await t.getAttribute('data-cells')).toBe('2704');
    expect(await range(t)).toEqual(await range(s));
    expect(await t.locator('.scale-note').textContent()).toBe('same scale as spatial attention S');
    // Hovering a cell of T outlines the same cell on S, and each shows its own value; the canvas is not redrawn.
    await t.locator('canvas').evaluate((c) => ((c as HTMLCanvasElement & { marked?: boolean }).marked = true));
    const frame = t.locator('.heatmap-frame');
    await frame.scrollIntoViewIfNeeded();
    const box = (await frame.boundingBox())!;
    for (let i = 0; i < 30; i++) await page.mouse.move(box.x + 5 + i * 3, box.y + 60);
    await page.mouse.move(box.x + box.width * (10.5 / 52), box.y + box.height * (20.5 / 52));
    expect(await t.getByTestId('heatmap-hover').getAttribute('data-cell')).toBe('10,20');
    expect(await s.getByTestId('heatmap-hover').getAttribute('data-cell')).toBe('10,20');
    expect(await s.locator('.hover-value').textContent()).toMatch(/^\(10, 20\) -?[\d.e-]+$/);
    expect(await t.locator('canvas').evaluate((c) => (c as HTMLCanvasElement & { marked?: boolean }).marked)).toBe(true);
    await fgd.screenshot({ path: join(shots, 'lab-inspect-fgd-416.png') });
    // Per-map scales on request.
    await page.getByTestId('shared-scale').uncheck();
    expect(await range(t)).not.toEqual(await range(s));
    await page.getByTestId('shared-scale').check();
    await page.mouse.move(0, 0);
    expect(await s.getByTestId('heatmap-hover').count()).toBe(0);
  });

  it('draws readable axes: 11 px or more, no x labels overlapping; names raw and weighted terms', async () => {
    const { page } = lab;
    const rm = page.getByTestId('maps-rm');
    await rm.getByTestId('distribution').first().waitFor();
    const charts = await page.locator('[data-testid="inspect-panel"] svg').evaluateAll((svgs) =>
      svgs.map((svg) => {
        const texts = [...svg.querySelectorAll('text.axis')] as SVGTextElement[];
        const sizes = texts.map((t) => parseFloat(getComputedStyle(t).fontSize));
        // The x labels share the bottom line: their boxes must not overlap.
        const boxes = texts.map((t) => t.getBoundingClientRect()).filter((b) => b.width > 0);
        const bottom = Math.max(...boxes.map((b) => b.bottom));
        const row = boxes.filter((b) => Math.abs(b.bottom - bottom) < 2).sort((a, b) => a.left - b.left);
        const overlaps = row.filter((b, i) => i > 0 && b.left < row[i - 1]!.right).length;
        return { min: Math.min(...sizes), overlaps, labels: row.length };
      }),
    );
    const axes = charts.filter((c) => c.labels > 0);
    expect(axes.length).toBeGreaterThan(3);
    for (const c of axes) {
      expect(c.min).toBeGreaterThanOrEqual(11);
      expect(c.overlaps).toBe(0);
    }
    await rm.screenshot({ path: join(shots, 'lab-inspect-rm.png') });
    // Terms: the weighted loss and its raw parts say which is which, in the curves and the inspection.
    expect(await page.locator('[data-term="kd"] .term').textContent()).toBe('kd · weighted');
    expect(await page.locator('[data-term="kd/kd"] .term').textContent()).toBe('kd › kd term · raw');
    expect(await page.getByTestId('inspect-terms').locator('tr[data-term="kd/kd"] td').first().textContent()).toBe('kd › kd term · raw');
  });
});
