import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configureSmallRun, loadFixture, openLab, root, waitForStep, type Lab } from './harness';

const shots = join(root, 'test-results');
mkdirSync(shots, { recursive: true });

// One lab, one short run at 64×64 on WebGPU (SwiftShader): three methods with the detection loss,
// paused and resumed; then every method's inspection maps on a two-object image.
describe('training and inspection in the lab (WebGPU on SwiftShader)', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await openLab('?backend=webgpu');
  });
  afterAll(async () => {
    if (lab) console.log(lab.logs.filter((l) => /error|warn/i.test(l)).slice(-20).join('\n'));
    await lab?.close();
  });

  it('opens with both default models, their sizes and costs, and reads the VOC folder', async () => {
    const { page } = lab;
    await loadFixture(page);
    expect(await page.getByTestId('teacher-params').textContent()).toBe('3.79 M');
    expect(await page.getByTestId('student-params').textContent()).toBe('2.74 M');
    expect(await page.getByTestId('student-macs').textContent()).toMatch(/^1\.76 G per image at 416²/);
    expect(await page.getByTestId('teacher-macs').textContent()).toMatch(/G per image at 416²/);
    expect(await page.getByTestId('split-train-images').textContent()).toBe('20');
    expect(await page.getByTestId('split-val-images').textContent()).toBe('10');
    expect(await page.getByTestId('split-val').textContent()).toMatch(/19 objects \(4 difficult\)/);
    await page.getByTestId('data-panel').screenshot({ path: join(shots, 'lab-data.png') });
    await page.getByTestId('student-card').screenshot({ path: join(shots, 'lab-student.png') });
  });

  it('trains three steps with FGD, LD and RM: pause holds the step, the curves move', async () => {
    const { page } = lab;
    await configureSmallRun(page, { methods: ['fgd', 'ld', 'rm'], images: 3 });
    await page.getByTestId('methods-panel').screenshot({ path: join(shots, 'lab-methods.png') });
    await page.getByTestId('train').click();
    await waitForStep(page, 1);
    await page.getByTestId('pause').click();
    await page.getByTestId('train-status').filter({ hasText: /^paused$/ }).waitFor({ timeout: 120_000 });
    const held = await page.getByTestId('train-step').textContent();
    await page.waitForTimeout(1500);
    expect(await page.getByTestId('train-step').textContent()).toBe(held);
    // The page stays responsive while the worker trains: the status bar and buttons answer.
    expect(await page.getByTestId('status-run').textContent()).toMatch(/paused · step \d\/3/);
    await page.getByTestId('resume').click();
    await page.getByTestId('train-status').filter({ hasText: /^finished$/ }).waitFor({ timeout: 240_000 });
    expect(await page.getByTestId('train-step').textContent()).toBe('3 / 3');
    const charts = page.getByTestId('loss-chart');
    const terms = await charts.evaluateAll((els) => els.map((e) => [e.getAttribute('data-term'), Number(e.getAttribute('data-points'))] as const));
    const names = terms.map(([n]) => n);
    for (const n of ['loss', 'detection', 'detection/qfl', 'fgd', 'fgd/fg', 'fgd/bg', 'ld', 'ld/main', 'rm', 'rm/cls']) expect(names).toContain(n);
    for (const [n, points] of terms) expect(points, n!).toBe(3);
    // The total moved between steps (a flat line would mean nothing was learnt or read).
    const path = await page.locator('[data-term="loss"] path').getAttribute('d');
    const ys = [...path!.matchAll(/[ML][\d.]+,([\d.]+)/g)].map((m) => Number(m[1]));
    expect(new Set(ys).size).toBeGreaterThan(1);
    expect(await page.getByTestId('train-loss').textContent()).toMatch(/^\d/);
    // One pass over three images, one per step: each read by the teacher once and kept for the next epoch.
    expect(await page.getByTestId('teacher-cache').textContent()).toMatch(/^0% · 3 img · \d+ MiB$/);
    await page.getByTestId('training-panel').screenshot({ path: join(shots, 'lab-training.png') });
  });

  it('inspects an image with every method: detections of both models and real maps', async () => {
    const { page } = lab;
    for (const m of ['fgfi', 'pfi', 'head-mimic', 'kd']) await page.getByTestId(`method-toggle-${m}`).check();
    await page.getByTestId('inspect-image').selectOption('2007_000061');
    // At 64×64 only the larger boat (object 0) has positive anchors; LD reads its edges.
    await page.getByTestId('inspect-ld-object').selectOption('0');
    // At 64×64 the models are unsure: show boxes from score 0.05.
    await page.getByTestId('inspect-threshold').selectOption('0.05');
    await page.getByTestId('inspect').click();
    await page.getByTestId('inspect-summary').waitFor({ timeout: 240_000 });
    expect(await page.getByTestId('inspect-summary').textContent()).toMatch(/2007_000061 · 500×333 at 64²/);
    for (const id of ['fgfi', 'fgd', 'pfi', 'rm', 'ld', 'head-mimic', 'kd']) {
      const section = page.getByTestId(`maps-${id}`);
      await section.waitFor();
      if (id !== 'rm') {
        // Each heatmap is a canvas with one pixel per cell; at least one map of the method has varying colours.
        const spans = await section.getByTestId('heatmap').evaluateAll((els) => els.map((e) => [Number(e.getAttribute('data-min')), Number(e.getAttribute('data-max'))]));
        expect(spans.length, id).toBeGreaterThanOrEqual(3);
        expect(await section.locator('[data-testid="heatmap"] canvas').count(), id).toBe(spans.length);
        const colours = await section.locator('[data-testid="heatmap"] canvas').evaluateAll((els) =>
          Math.max(
            ...els.map((c) => {
              const canvas = c as HTMLCanvasElement;
              const px = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
              const seen = new Set<string>();
              for (let i = 0; i < px.length; i += 4) seen.add(`${px[i]},${px[i + 1]},${px[i + 2]}`);
              return seen.size;
            }),
          ),
        );
        expect(colours, id).toBeGreaterThan(1);
        // No rect per cell: the only rects are the @visx colour scale's cells.
        expect(await section.locator('[data-testid="heatmap"] .heatmap-frame rect').count(), id).toBe(0);
      }
      await section.screenshot({ path: join(shots, `lab-inspect-${id}.png`) });
    }
    // FGD: masks and attention per level (3 levels × 4 maps) and channel attention T vs S.
    expect(await page.getByTestId('maps-fgd').getByTestId('heatmap').count()).toBe(12);
    expect(await page.getByTestId('maps-fgd').getByTestId('channel-bars').count()).toBe(3);
    // PFI: P and F side by side per level.
    expect(await page.getByTestId('maps-pfi').getByTestId('heatmap').count()).toBe(6);
    // RM: class and IoU rank distributions for each boat with positives; LD: 4 edges of object 0.
    expect(await page.getByTestId('maps-rm').getByTestId('distribution').count()).toBeGreaterThanOrEqual(2);
    expect(await page.getByTestId('maps-ld').getByTestId('distribution').count()).toBe(4);
    expect(await page.getByTestId('maps-ld').textContent()).toMatch(/edges of object 0 \(boat\)/);
    // Hovering a cell shows its value.
    const first = page.getByTestId('maps-fgd').getByTestId('heatmap').first();
    await first.locator('.heatmap-frame').hover({ position: { x: 40, y: 40 } });
    expect(await first.locator('.hover-value').textContent()).toMatch(/^\(\d+, \d+\) -?[\d.e-]+$/);
    expect(await page.getByTestId('inspect-teacher').getByTestId('inspect-box').count()).toBeGreaterThan(0);
    await page.locator('[data-testid="inspection"] > .map-row').first().screenshot({ path: join(shots, 'lab-inspect-detections.png') });
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: join(shots, 'lab-overview.png') });
  });
});
