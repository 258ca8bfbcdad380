import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { runExperiment } from '../src/cli/run';
import { defaultExperiment } from '../src/train/config';
import { unzipSync, strFromU8 } from 'fflate';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configureSmallRun, fixtureDir, loadFixture, openLab, root, unstickHeader, waitForStep, type Lab } from './harness';

const shots = join(root, 'test-results');
mkdirSync(shots, { recursive: true });

async function saveDownload(page: Page, click: () => Promise<void>, name: string): Promise<{ path: string; suggested: string }> {
  const download = page.waitForEvent('download');
  await click();
  const file = await download;
  const path = join(shots, name);
  await file.saveAs(path);
  return { path, suggested: file.suggestedFilename() };
}

const runItems = (page: Page) => page.getByTestId('run-item');

// Provenance and the run history, on wasm: a KD run evaluated and exported (its zip carries the
// model card, which the lab shows when the zip is loaded again), its log downloaded, a second run
// with LD stopped halfway; after a reload both are listed, the LD run resumes where it stopped,
// the two compare, and one exported run imports into a fresh page.
describe('model card, run log and run history (wasm backend)', () => {
  let lab: Lab;
  const exportedStudent = join(shots, 'history-student.zip');
  let runZip = '';
  beforeAll(async () => {
    lab = await openLab('?backend=wasm');
  });
  afterAll(async () => {
    if (lab) console.log(lab.logs.filter((l) => /error|warn/i.test(l)).slice(-20).join('\n'));
    await lab?.close();
  });

  it('a KD run: evaluated, its log downloaded, the student exported with its model card', async () => {
    const { page } = lab;
    await loadFixture(page);
    await configureSmallRun(page, { methods: ['kd'], images: 2, evalImages: 2, checkpointEvery: 1 });
    // Evaluation during training: before the first step, after each step, and at the end.
    await page.getByTestId('eval-every').fill('1');
    // No teacher cache in this run: the worker takes the field, and the panel shows no cache.
    expect(await page.getByTestId('teacher-cache-mib').inputValue()).toBe('512');
    await page.getByTestId('teacher-cache-mib').fill('0');
    await page.getByTestId('train').click();
    await page.getByTestId('train-status').filter({ hasText: /^finished$/ }).waitFor({ timeout: 240_000 });
    expect(await page.getByTestId('teacher-cache').count()).toBe(0);
    await page.getByTestId('run-map-now').filter({ hasText: /^[\d.]+ mAP at step 2$/ }).waitFor({ timeout: 30_000 });
    const points = (await page.getByTestId('run-map-curve').locator('polyline').getAttribute('points'))!.split(' ');
    expect(points).toHaveLength(3);
    await page.getByTestId('runs-panel').screenshot({ path: join(shots, 'lab-runs-map-curve.png') });
    await page.getByTestId('evaluate').click();
    await page.getByTestId('eval-table').waitFor({ timeout: 240_000 });
    await page.getByTestId('runs-panel').getByTestId('run-meta').filter({ hasText: /mAP [\d.]+ at step 2/ }).waitFor({ timeout: 30_000 });

    const jsonl = await saveDownload(page, () => page.getByTestId('log-jsonl').click(), 'history-log.jsonl');
    expect(jsonl.suggested).toMatch(/^log-kd-64-.*\.jsonl$/);
    const rows = readFileSync(jsonl.path, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l));
    expect(rows.map((r) => r.step)).toEqual([1, 2]);
    // log.jsonl's keys, in its order (gradientNorms only on steps where they were measured).
    expect(Object.keys(rows[0]).filter((k) => k !== 'gradientNorms')).toEqual(['step', 'epoch', 'lr', 'loss', 'terms', 'gradNorm', 'applied', 'pseudoBoxes', 'ms']);
    expect(Object.keys(rows[0].terms)).toContain('kd');
    const csv = await saveDownload(page, () => page.getByTestId('log-csv').click(), 'history-log.csv');
    const lines = readFileSync(csv.path, 'utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]!.split(',').slice(0, 4)).toEqual(['step', 'epoch', 'lr', 'loss']);
    expect(lines[0]).toContain('terms.kd');
    expect(Number(lines[2]!.split(',')[3])).toBeCloseTo(rows[1].loss, 10);

    const zip = await saveDownload(page, () => page.getByTestId('export').click(), 'history-student.zip');
    expect(zip.path).toBe(exportedStudent);
    const files = unzipSync(new Uint8Array(readFileSync(exportedStudent)));
    expect(Object.keys(files).sort()).toEqual(['MODEL_CARD.md', 'model-card.json', 'model.bin', 'model.json', 'model.manifest.json']);
    const card = JSON.parse(strFromU8(files['model-card.json']!));
    expect(card.projectVersion).toBe(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version);
    expect(card.teacher.name).toBe('NanoDet-g');
    expect(card.teacher.weightsSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(card.training).toMatchObject({ steps: 2, backend: 'wasm', detectionWeight: 1 });
    expect(card.training.methods).toEqual([{ id: 'kd', title: 'Soft-label KD', scale: 1, params: { temperature: 1, mode: 'bce', reduction: 'mean', scaleByT2: true, weight: 1, confidencePower: 0 }, overrides: [] }]);
    expect(card.training.schedule.inputSize).toBe(64);
    expect(card.data.train).toMatchObject({ name: 'train', images: 2 });
    expect(card.data.val).toMatchObject({ name: 'val', images: 2 });
    expect(card.evaluation.after.step).toBe(2);
    expect(card.evaluation.before.images).toBe(2);
    expect(strFromU8(files['MODEL_CARD.md']!)).toContain('| methods | kd |');
  });

  it('a second run with LD, stopped after its first steps', async () => {
    const { page } = lab;
    await page.getByTestId('method-toggle-kd').uncheck();
    await configureSmallRun(page, { methods: ['ld'], images: 6, evalImages: 2, checkpointEvery: 1 });
    await page.getByTestId('train').click();
    await page.getByTestId('train-confirm-new').click();
    await waitForStep(page, 2);
    await page.getByTestId('stop').click();
    await page.getByTestId('train-status').filter({ hasText: /^stopped$/ }).waitFor({ timeout: 120_000 });
    await expect.poll(() => runItems(page).count(), { timeout: 30_000 }).toBe(2);
    // Newest first: the LD run, then the KD run, which gets a name.
    expect(await runItems(page).nth(0).getByTestId('run-meta').textContent()).toMatch(/^ld · step \d\/6/);
    await runItems(page).nth(1).getByTestId('run-name').fill('KD baseline');
    await runItems(page).nth(1).getByTestId('run-name').press('Enter');
    // Saved: the history lists it under its new name.
    await page.locator('[data-testid="run-item"][data-run-name="KD baseline"]').waitFor({ timeout: 30_000 });
  });

  it('after a reload both runs are listed; the LD run resumes where it stopped; the two compare', async () => {
    const { page } = lab;
    await page.reload();
    await unstickHeader(page);
    await expect.poll(() => runItems(page).count(), { timeout: 120_000 }).toBe(2);
    expect(await runItems(page).nth(1).getByTestId('run-name').inputValue()).toBe('KD baseline');
    expect(await page.getByTestId('runs-storage').textContent()).toMatch(/^storage used: [\d.]+ [KMG]?i?B of [\d.]+ [KMG]?i?B$/);
    const ld = runItems(page).nth(0);
    const ldId = await ld.getAttribute('data-run-id');
    const stoppedAt = Number((await ld.getByTestId('run-meta').textContent())!.match(/step (\d)\/6/)![1]);
    await loadFixture(page);
    await ld.getByTestId('run-resume').click();
    await page.getByTestId('train-status').filter({ hasText: /^finished$/ }).waitFor({ timeout: 240_000 });
    expect(await page.getByTestId('train-step').textContent()).toMatch(/^6\s*\/\s*6/);
    await expect.poll(async () => runItems(page).nth(0).getByTestId('run-meta').textContent(), { timeout: 30_000 }).toMatch(/^ld · step 6\/6/);
    expect(await runItems(page).nth(0).getAttribute('data-run-id')).toBe(ldId);
    expect(await runItems(page).count()).toBe(2);
    expect(stoppedAt).toBeGreaterThanOrEqual(2);

    await page.getByTestId('evaluate').click();
    await page.getByTestId('runs-panel').getByTestId('run-meta').filter({ hasText: /^ld .*mAP [\d.]+ at step 6/ }).waitFor({ timeout: 240_000 });
    for (const i of [0, 1]) await runItems(page).nth(i).getByTestId('run-pick').check();
    await page.getByTestId('compare-runs').click();
    await page.getByTestId('comparison').waitFor();
    const diff = await page.getByTestId('compare-config').locator('tbody td:first-child').allTextContents();
    expect(diff).toContain('methods[kd].params.temperature');
    expect(diff).toContain('methods[ld].params.temperature');
    expect(await page.getByTestId('compare-map').locator('td').count()).toBe(4);
    await page.getByTestId('runs-panel').screenshot({ path: join(shots, 'lab-runs-compare.png') });

    const kd = runItems(page).nth(1);
    runZip = (await saveDownload(page, () => kd.getByTestId('run-export-zip').click(), 'history-run.zip')).path;
    expect(Object.keys(unzipSync(new Uint8Array(readFileSync(runZip)))).sort()).toEqual(['checkpoint.dlc', 'run.json']);

    // Freeing the LD run's checkpoint keeps the run (curves, mAP) without it.
    await runItems(page).nth(0).getByTestId('run-drop-checkpoint').click();
    await expect.poll(async () => runItems(page).nth(0).getByTestId('run-meta').textContent(), { timeout: 30_000 }).not.toMatch(/checkpoint at step/);
    expect(await runItems(page).nth(0).getByTestId('run-meta').textContent()).toMatch(/^ld · step 6\/6 .* mAP [\d.]+ at step 6/);
    expect(await runItems(page).nth(0).getByTestId('run-drop-checkpoint').count()).toBe(0);
  });

  it('a fresh page imports the exported run, and shows how the exported student was made', async () => {
    const context = await lab.browser.newContext({ viewport: { width: 1400, height: 900 } });
    const fresh = await context.newPage();
    try {
      await fresh.goto(`${lab.url}?backend=wasm`);
      await unstickHeader(fresh);
      await fresh.getByTestId('student-name').waitFor({ timeout: 120_000 });
      expect(await runItems(fresh).count()).toBe(0);
      await fresh.getByTestId('run-import').setInputFiles(runZip);
      await fresh.getByTestId('runs-notice').filter({ hasText: 'Imported "KD baseline" (2 steps, with its checkpoint).' }).waitFor({ timeout: 30_000 });
      expect(await runItems(fresh).count()).toBe(1);
      expect(await runItems(fresh).nth(0).getByTestId('run-meta').textContent()).toMatch(/^kd · step 2\/2 · 64² · wasm · lab .* mAP [\d.]+ at step 2/);
      await fresh.getByTestId('runs-panel').screenshot({ path: join(shots, 'lab-runs-imported.png') });

      await fresh.getByTestId('student-files').setInputFiles(exportedStudent);
      await fresh.getByTestId('student-name').filter({ hasText: 'distilled, step 2' }).waitFor({ timeout: 120_000 });
      const section = fresh.getByTestId('student-card').getByTestId('provenance');
      await section.locator('summary').click();
      expect(await section.getByTestId('provenance-training-methods').textContent()).toBe('methodskd');
      expect(await section.getByTestId('provenance-training-steps').textContent()).toBe('steps2');
      expect(await section.getByTestId('provenance-teacher-weights-sha256').textContent()).toMatch(/^weights sha256[0-9a-f]{64}$/);
      expect(await section.getByTestId('provenance-evaluation-student-after').textContent()).toMatch(/^student after[\d.]+ mAP \(all-point\).*2 images, step 2$/);
      await fresh.getByTestId('student-card').screenshot({ path: join(shots, 'lab-student-provenance.png') });
    } finally {
      await context.close();
    }
  });

  it('a run of the command line (run.json) imports into the lab', async () => {
    // Two steps of KD at 64² on two fixture images, headless, as `npm run distill` runs them.
    const dir = mkdtempSync(join(tmpdir(), 'distill-cli-run-'));
    try {
      const voc = join(dir, 'voc/VOCdevkit/VOC2012');
      for (const d of ['Annotations', 'JPEGImages', 'ImageSets/Main']) mkdirSync(join(voc, d), { recursive: true });
      for (const id of ['2007_000027', '2007_000039', '2007_000068']) {
        copyFileSync(join(fixtureDir, 'Annotations', `${id}.xml`), join(voc, 'Annotations', `${id}.xml`));
        copyFileSync(join(fixtureDir, 'JPEGImages', `${id}.jpg`), join(voc, 'JPEGImages', `${id}.jpg`));
      }
      writeFileSync(join(voc, 'ImageSets/Main/train.txt'), '2007_000027\n2007_000039\n');
      writeFileSync(join(voc, 'ImageSets/Main/val.txt'), '2007_000068\n');
      await tf.setBackend('wasm');
      const config = defaultExperiment();
      config.methods = [{ id: 'kd' }];
      config.schedule = { ...config.schedule, epochs: 1, batchSize: 1, inputSize: 64, warmupSteps: 0 };
      config.gradientNormsEvery = 0;
      await runExperiment({ config, dataDir: join(dir, 'voc'), outDir: join(dir, 'out') });
      const runJson = join(shots, 'history-cli-run.json');
      copyFileSync(join(dir, 'out/run.json'), runJson);

      const context = await lab.browser.newContext({ viewport: { width: 1400, height: 900 } });
      const fresh = await context.newPage();
      try {
        await fresh.goto(`${lab.url}?backend=wasm`);
        await fresh.getByTestId('student-name').waitFor({ timeout: 120_000 });
        await fresh.getByTestId('run-import').setInputFiles(runJson);
        await fresh.getByTestId('runs-notice').filter({ hasText: /^Imported "kd, 64², .*" \(2 steps, without a checkpoint\)\.$/ }).waitFor({ timeout: 30_000 });
        expect(await runItems(fresh).nth(0).getByTestId('run-meta').textContent()).toMatch(/^kd · step 2\/2 · 64² · wasm · command line · .* · mAP [\d.]+ at step 2$/);
      } finally {
        await context.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
