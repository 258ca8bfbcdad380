import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configureSmallRun, loadFixture, openLab, root, type Lab } from './harness';

const shots = join(root, 'test-results');
mkdirSync(shots, { recursive: true });

/** The student's boxes of the inspected image, as numbers. */
async function studentBoxes(page: Page): Promise<{ box: number[]; score: number; cls: string }[]> {
  return page
    .getByTestId('inspect-student')
    .getByTestId('inspect-box')
    .evaluateAll((els) => els.map((e) => ({ box: e.getAttribute('data-box')!.split(',').map(Number), score: Number(e.getAttribute('data-score')), cls: e.getAttribute('data-class')! })));
}

async function inspectImage(page: Page, split: 'train' | 'val', id: string) {
  await page.getByTestId('inspect-split').selectOption(split);
  await page.getByTestId('inspect-image').selectOption(id);
  // A student fine-tuned for two steps at 96×96 is not confident yet: show its low-score boxes too.
  await page.getByTestId('inspect-threshold').selectOption('0.05');
  await page.getByTestId('inspect').click();
  await page.getByTestId('inspect-summary').filter({ hasText: id }).waitFor({ timeout: 180_000 });
}

// Plain fine-tuning for two steps at 96×96, then: evaluation of teacher / student before / now,
// the experiment config and the student exported, and both loaded in a fresh page (on wasm).
describe('evaluation and export (WebGPU on SwiftShader)', () => {
  let lab: Lab;
  const exported = join(shots, 'exported-student.zip');
  const configPath = join(shots, 'experiment.json');
  beforeAll(async () => {
    lab = await openLab('?backend=webgpu');
  });
  afterAll(async () => {
    if (lab) console.log(lab.logs.filter((l) => /error|warn/i.test(l)).slice(-20).join('\n'));
    await lab?.close();
  });

  it('fine-tunes two steps and evaluates the teacher, the student before and the student now', async () => {
    const { page } = lab;
    await loadFixture(page);
    await configureSmallRun(page, { methods: [], images: 2, inputSize: 96, evalImages: 2 });
    await page.getByTestId('train').click();
    await page.getByTestId('train-status').filter({ hasText: /^finished$/ }).waitFor({ timeout: 240_000 });
    await page.getByTestId('evaluate').click();
    await page.getByTestId('eval-progress').waitFor({ timeout: 30_000 });
    await page.getByTestId('eval-table').waitFor({ timeout: 240_000 });
    const heads = await page.locator('[data-testid="eval-table"] thead th').allTextContents();
    expect(heads).toEqual(['%', 'teacher', 'student before', 'student now']);
    for (const target of ['teacher', 'before', 'now']) {
      const cells = await page.getByTestId(`metric-${target}`).allTextContents();
      expect(cells).toHaveLength(5);
      for (const c of cells) {
        if (c === '–') continue;
        expect(Number(c)).toBeGreaterThanOrEqual(0);
        expect(Number(c)).toBeLessThanOrEqual(100);
      }
    }
    // val's first two images hold a train (2 objects) and a bird: their classes get rows.
    const classes = await page.locator('[data-testid="eval-per-class"] tbody td:first-child').allTextContents();
    expect(classes).toEqual(['bird (1)', 'train (2)']);
    await page.getByTestId('eval-panel').screenshot({ path: join(shots, 'lab-evaluation.png') });
    // Where the student loses: the teacher, the student, and the student with either half of its
    // head or its neck input taken from the teacher, each a percentage.
    await page.getByTestId('diagnose').click();
    await page.getByTestId('diagnosis-table').waitFor({ timeout: 240_000 });
    const parts = await page.locator('[data-testid="diagnosis-table"] tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-part')));
    expect(parts).toEqual(['teacher', 'student', 'teacherClasses', 'teacherBoxes', 'teacherNeck']);
    for (const part of parts) {
      const text = await page.getByTestId(`diagnosis-${part}`).textContent();
      if (text === '–') continue;
      const value = Number(text);
      expect(value).toBeGreaterThanOrEqual(0);
      expect(value).toBeLessThanOrEqual(100);
    }
    // The teacher's row is the same evaluation as the table's teacher column.
    expect(await page.getByTestId('diagnosis-teacher').textContent()).toBe((await page.getByTestId('metric-teacher').allTextContents())[1]);
    expect(await page.getByTestId('diagnosis-summary').textContent()).toMatch(/\.$/);
    await page.getByTestId('eval-panel').screenshot({ path: join(shots, 'lab-diagnosis.png') });
  });

  it('exports the student and the config; a fresh page loads both and gives the same detections', async () => {
    const { page } = lab;
    let download = page.waitForEvent('download');
    await page.getByTestId('save-config').click();
    await (await download).saveAs(configPath);
    await page.getByTestId('precision-float32').check();
    download = page.waitForEvent('download');
    await page.getByTestId('export').click();
    const file = await download;
    expect(file.suggestedFilename()).toBe('nanodet-g-half-depth-voc-distilled-step2-float32.zip');
    await file.saveAs(exported);
    await page.getByTestId('export-result').waitFor();
    await page.getByTestId('export-panel').screenshot({ path: join(shots, 'lab-export.png') });
    await inspectImage(page, 'val', '2007_000068');
    const before = await studentBoxes(page);

    // A fresh page: its own IndexedDB, the default models, no data; on the wasm backend, so the
    // exported weights are checked on another backend too (and SwiftShader compiles nothing twice).
    const context = await lab.browser.newContext({ viewport: { width: 1400, height: 900 } });
    const fresh = await context.newPage();
    fresh.on('worker', (w) => w.on('console', (m) => lab.logs.push(`[fresh ${m.type()}] ${m.text()}`)));
    try {
      const wasmUrl = new URL(lab.url);
      wasmUrl.searchParams.set('backend', 'wasm');
      await fresh.goto(wasmUrl.href);
      await fresh.getByTestId('student-name').waitFor({ timeout: 120_000 });
      await fresh.getByTestId('student-files').setInputFiles(exported);
      await fresh.getByTestId('student-name').filter({ hasText: 'distilled, step 2' }).waitFor({ timeout: 120_000 });
      expect(await fresh.getByTestId('student-params').textContent()).toBe('2.74 M');
      await fresh.getByTestId('config-file').setInputFiles(configPath);
      await fresh.getByTestId('config-notice').filter({ hasText: 'Loaded experiment.json' }).waitFor();
      expect(await fresh.getByTestId('schedule-inputSize').inputValue()).toBe('96');
      await loadFixture(fresh);
      await inspectImage(fresh, 'val', '2007_000068');
      const after = await studentBoxes(fresh);
      await fresh.getByTestId('student-card').screenshot({ path: join(shots, 'lab-student-reloaded.png') });
      expect(await fresh.getByTestId('backend-name').textContent()).toBe('wasm');
      // Same boxes up to float32 rounding between WebGPU and wasm (boxes in 96-pixel input space).
      expect(after.length).toBe(before.length);
      expect(after.length).toBeGreaterThan(0);
      after.forEach((d, i) => {
        expect(d.cls).toBe(before[i]!.cls);
        expect(Math.abs(d.score - before[i]!.score)).toBeLessThan(2e-3);
        d.box.forEach((v, k) => expect(Math.abs(v - before[i]!.box[k]!)).toBeLessThan(0.2));
      });
    } finally {
      await context.close();
    }
  });
});
