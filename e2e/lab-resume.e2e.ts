import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { strToU8, zipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configureSmallRun, fixtureDir, loadFixture, openLab, root, waitForFrames, waitForOrExplain, waitForStep, type Lab } from './harness';

const shots = join(root, 'test-results');
mkdirSync(shots, { recursive: true });

const savedStep = async (lab: Lab) => Number((await lab.page.getByTestId('checkpoint-info').textContent())?.match(/step (\d+) of/)?.[1] ?? NaN);

// A run reloaded mid-way resumes from its checkpoint. On the wasm backend: the same code path as
// WebGPU for checkpoints, without SwiftShader compiling every kernel twice (before and after the
// reload), which alone would take most of this file's five minutes.
describe('a run reloaded mid-way resumes from its checkpoint (wasm backend)', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await openLab('?backend=wasm');
  });
  afterAll(async () => {
    if (lab) console.log(lab.logs.filter((l) => /error|warn/i.test(l)).slice(-20).join('\n'));
    await lab?.close();
  });

  it('resumes after a reload mid-run from the last checkpoint, with its curves, and stops keeping what was learnt', async () => {
    const { page } = lab;
    await loadFixture(page);
    expect(await page.getByTestId('backend-name').textContent()).toBe('wasm');
    await configureSmallRun(page, { methods: ['kd', 'fgfi'], images: 20, checkpointEvery: 2 });
    await page.getByTestId('train').click();
    await waitForStep(page, 3);
    await page.getByTestId('checkpoint-info').filter({ hasText: /step \d+ of 20/ }).waitFor({ timeout: 60_000 });
    await page.reload();
    await page.getByTestId('student-name').waitFor({ timeout: 120_000 });
    // The experiment as edited comes back too.
    expect(await page.getByTestId('schedule-inputSize').inputValue()).toBe('64');
    expect(await page.getByTestId('method-toggle-kd').isChecked()).toBe(true);
    // FGFI has a connector per level: its weights must come back after the reload too.
    expect(await page.getByTestId('method-toggle-fgfi').isChecked()).toBe(true);
    const saved = await savedStep(lab);
    expect(saved).toBeGreaterThanOrEqual(2);
    expect(saved % 2).toBe(0);
    // The curves of the saved run come back with its checkpoint.
    expect(Number(await page.locator('[data-term="loss"]').getAttribute('data-points'))).toBe(saved);
    await loadFixture(page);
    await page.getByTestId('resume-checkpoint').filter({ hasText: `Resume from step ${saved}` }).click();
    await waitForStep(page, saved + 1);
    await page.getByTestId('stop').click();
    await page.getByTestId('train-status').filter({ hasText: /^(stopped|finished)$/ }).waitFor({ timeout: 120_000 });
    const final = await savedStep(lab);
    expect(final).toBeGreaterThan(saved);
    expect(await page.locator('[data-term="loss"] .range').textContent()).toMatch(new RegExp(`steps 1–${final}$`));
    await page.getByTestId('training-panel').screenshot({ path: join(shots, 'lab-resumed.png') });
  });

  it('stops a run whose loss keeps coming out non-finite, and says what to do', async () => {
    const { page } = lab;
    await configureSmallRun(page, { methods: [], images: 5 });
    // Adam moves every weight by about lr per step: at 1e12 the activations overflow at once.
    // A learning rate that is not a number blocks Train, which says which field to fix.
    await page.getByTestId('schedule-lr').fill('abc');
    expect(await page.getByTestId('train').isDisabled()).toBe(true);
    expect(await page.getByTestId('train-why').textContent()).toMatch(/Fix learning rate first/);
    await page.getByTestId('training-panel').screenshot({ path: join(shots, 'lab-invalid-field.png') });
    await page.getByTestId('schedule-lr').fill('1e12');
    expect(await page.getByTestId('train-why').count()).toBe(0);
    // The stopped run above is replaced only once the person says so.
    await page.getByTestId('train').click();
    await page.getByTestId('train-confirm-new').click();
    await page.getByTestId('train-error').waitFor({ timeout: 120_000 });
    expect(await page.getByTestId('train-error').textContent()).toMatch(/The loss was not finite for several steps in a row .*Lower the learning rate/);
    expect(await page.getByTestId('train-status').textContent()).toBe('stopped by an error');
    await page.getByTestId('training-panel').screenshot({ path: join(shots, 'lab-nan.png') });
    await page.getByTestId('schedule-lr').fill('0.0001');
  });

  it('names a corrupt image of the training set when a step cannot decode it', async () => {
    const { page } = lab;
    const ids = ['2007_000027', '2007_000039'];
    const files: Record<string, Uint8Array> = {};
    for (const id of ids) {
      files[`VOC2012/JPEGImages/${id}.jpg`] = readFileSync(join(fixtureDir, 'JPEGImages', `${id}.jpg`));
      files[`VOC2012/Annotations/${id}.xml`] = readFileSync(join(fixtureDir, 'Annotations', `${id}.xml`));
    }
    files['VOC2012/JPEGImages/2007_000039.jpg'] = new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 4]);
    files['VOC2012/ImageSets/Main/train.txt'] = strToU8(ids.join('\n'));
    files['VOC2012/ImageSets/Main/val.txt'] = strToU8(ids[0]!);
    await page.getByTestId('data-archive').setInputFiles([{ name: 'voc-corrupt.zip', mimeType: 'application/zip', buffer: Buffer.from(zipSync(files)) }]);
    await page.getByTestId('data-label').filter({ hasText: 'voc-corrupt.zip' }).waitFor({ timeout: 60_000 });
    await configureSmallRun(page, { methods: [], images: 0 });
    await page.getByTestId('train').click();
    await page.getByTestId('train-confirm-new').click();
    await waitForOrExplain(lab, page.getByTestId('train-error').filter({ hasText: 'Could not decode' }), 120_000);
    expect(await page.getByTestId('train-error').textContent()).toMatch(/Could not decode "2007_000039".*corrupt/);
  });
});

// A lost GPU device is recovered; bad files get clear messages and change nothing.
describe('recovery and bad input (WebGPU on SwiftShader)', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await openLab('?testHooks&backend=webgpu');
    await loadFixture(lab.page);
  });
  afterAll(async () => {
    if (lab) console.log(lab.logs.filter((l) => /error|warn/i.test(l)).slice(-20).join('\n'));
    await lab?.close();
  });

  it('explains broken and unsupported model files and keeps the student', async () => {
    const { page } = lab;
    const name = await page.getByTestId('student-name').textContent();
    await page.getByTestId('student-files').setInputFiles([{ name: 'model.json', mimeType: 'application/json', buffer: Buffer.from('{"modelTopology": ') }]);
    await page.getByTestId('student-notice').filter({ hasText: 'model.json is not valid JSON' }).waitFor({ timeout: 30_000 });
    expect(await page.getByTestId('student-name').textContent()).toBe(name);
    const manifest = JSON.parse(readFileSync(join(root, 'models/nanodet-student.manifest.json'), 'utf8'));
    const model = {
      modelTopology: { node: [{ name: 'input_1', op: 'Placeholder' }, { name: 'odd', op: 'FancyNewOp', input: ['input_1'] }] },
      weightsManifest: [{ paths: ['w.bin'], weights: [{ name: 'k', shape: [1], dtype: 'float32' }] }],
    };
    await page.getByTestId('student-files').setInputFiles([
      { name: 'model.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(model)) },
      { name: 'w.bin', mimeType: 'application/octet-stream', buffer: Buffer.alloc(4) },
      { name: 'odd.manifest.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify({ ...manifest, model: 'model.json' })) },
    ]);
    await page.getByTestId('student-notice').filter({ hasText: 'FancyNewOp' }).waitFor({ timeout: 30_000 });
    expect(await page.getByTestId('student-notice').textContent()).toMatch(/op\(s\) the trainable executor does not support:\s*- FancyNewOp: odd/);
    expect(await page.getByTestId('student-name').textContent()).toBe(name);
    await page.getByTestId('student-card').screenshot({ path: join(shots, 'lab-bad-model.png') });
  });

  it('loads a VOC .zip whose malformed annotation is skipped with its reason', async () => {
    const { page } = lab;
    const ids = ['2007_000027', '2007_000039', '2007_000061'];
    const files: Record<string, Uint8Array> = {};
    const base = 'VOC2012';
    for (const id of ids) {
      files[`${base}/JPEGImages/${id}.jpg`] = readFileSync(join(fixtureDir, 'JPEGImages', `${id}.jpg`));
      files[`${base}/Annotations/${id}.xml`] = readFileSync(join(fixtureDir, 'Annotations', `${id}.xml`));
    }
    files[`${base}/Annotations/2007_000039.xml`] = strToU8('<annotation><size><width>500</width>');
    files[`${base}/ImageSets/Main/train.txt`] = strToU8(ids.join('\n'));
    files[`${base}/ImageSets/Main/val.txt`] = strToU8(ids.slice(0, 1).join('\n'));
    expect(readdirSync(join(fixtureDir, 'JPEGImages')).length).toBeGreaterThan(3);
    await page.getByTestId('data-archive').setInputFiles([{ name: 'voc-small.zip', mimeType: 'application/zip', buffer: Buffer.from(zipSync(files)) }]);
    await page.getByTestId('data-label').filter({ hasText: 'voc-small.zip' }).waitFor({ timeout: 60_000 });
    expect(await page.getByTestId('split-train-images').textContent()).toBe('2');
    const train = page.getByTestId('split-train');
    expect(await train.textContent()).toMatch(/1 skipped/);
    await train.locator('summary').click();
    expect(await train.locator('.problems').textContent()).toMatch(/Annotations\/2007_000039\.xml/);
    await page.getByTestId('data-panel').screenshot({ path: join(shots, 'lab-bad-data.png') });
    // A broken archive dropped next keeps the data set that was loaded, and says why.
    await page.getByTestId('data-archive').setInputFiles([{ name: 'broken.zip', mimeType: 'application/zip', buffer: Buffer.from('PK\u0003\u0004 not really a zip') }]);
    await page.getByTestId('data-notice').filter({ hasText: /broken\.zip/ }).waitFor({ timeout: 60_000 });
    expect(await page.getByTestId('data-label').textContent()).toMatch(/voc-small\.zip/);
    expect(await page.getByTestId('split-train-images').textContent()).toBe('2');
  });

  it('recovers from a lost GPU device: a new worker, the models and data back, ready to train', async () => {
    const { page } = lab;
    const checkpoint = await page.getByTestId('checkpoint-info').textContent();
    await page.evaluate(() => (window as unknown as { __distillLab: { loseDevice(): Promise<void> } }).__distillLab.loseDevice());
    await page.getByTestId('device-lost').waitFor({ timeout: 30_000 });
    expect(await page.getByTestId('device-lost').textContent()).toMatch(/GPU device was lost \(destroyed/);
    // The lab keeps the banner in view with the header; the tests unstick the header for pictures, so go to it.
    // On SwiftShader the page draws no frame for 25-40 s once the loss is reported (its script
    // still answers at once): screenshots and clicks, which wait for frames, wait for them first.
    await page.evaluate(() => window.scrollTo(0, 0));
    const frameWait = await waitForFrames(page);
    if (frameWait > 5_000) console.log(`the page drew again ${frameWait} ms after the device was lost`);
    await page.locator('.app .top').screenshot({ path: join(shots, 'lab-device-lost.png') });
    await page.getByTestId('restart-worker').click();
    await page.getByTestId('student-name').waitFor({ timeout: 120_000 });
    await page.getByTestId('split-train-images').waitFor({ timeout: 60_000 });
    expect(await page.getByTestId('device-lost').count()).toBe(0);
    expect(await page.getByTestId('backend-name').textContent()).toBe('webgpu');
    expect(await page.getByTestId('checkpoint-info').textContent()).toBe(checkpoint);
    // The data set of the previous test (a small .zip) holds fewer training images than a batch of 4.
    await page.getByTestId('schedule-batchSize').fill('1');
    // The restarted worker reports its backend and the experiment a moment after the models: Train follows.
    const enabled = await page
      .waitForSelector('[data-testid="train"]:not([disabled])', { timeout: 60_000 })
      .then(() => true)
      .catch(async () => `still disabled: ${(await page.getByTestId('train-why').allTextContents()).join(' ')}`);
    expect(enabled).toBe(true);
  });
});
