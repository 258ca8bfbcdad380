import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureDir, openLab, root, type Lab } from './harness';

const shots = join(root, 'test-results');
mkdirSync(shots, { recursive: true });

/** Object class names in a VOC annotation (enough for a check; the real loader lives in src/data). */
function annotatedClasses(id: string): string[] {
  const xml = readFileSync(join(fixtureDir, 'Annotations', `${id}.xml`), 'utf8');
  return [...xml.matchAll(/<object>\s*<name>([^<]+)<\/name>/g)].map((m) => m[1]!.trim());
}

describe('the lab in Chromium, WebGPU on SwiftShader', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await openLab('?backend=webgpu');
  });
  afterAll(async () => {
    await lab?.close();
  });

  it('runs the model worker on the WebGPU backend and says which adapter', async () => {
    const { page } = lab;
    await page.getByTestId('teacher-name').waitFor({ timeout: 120_000 });
    expect(await page.getByTestId('backend-name').textContent()).toBe('webgpu');
    // SwiftShader reports itself as vendor google, architecture swiftshader, and as a fallback adapter.
    expect(await page.getByTestId('adapter-name').textContent()).toContain('swiftshader');
    expect(await page.getByTestId('adapter-kind').textContent()).toBe('software (fallback) adapter');
    expect(await page.getByTestId('attempt-webgpu').textContent()).toMatch(/in use.*software \(fallback\) adapter/);
    expect(await page.getByTestId('teacher-name').textContent()).toBe('NanoDet-g');
    expect(await page.getByTestId('teacher-params').textContent()).toBe('3.79 M');
  });

  it('detects the annotated person in a VOC photo, computed in the worker', async () => {
    const { page } = lab;
    expect(annotatedClasses('2007_000027')).toEqual(['person']);
    await page.getByTestId('image-input').setInputFiles(join(fixtureDir, 'JPEGImages/2007_000027.jpg'));
    await page.getByTestId('detections-table').waitFor({ timeout: 280_000 });
    expect(await page.getByTestId('detection-summary').textContent()).toMatch(/486×500, run at 416×416 on webgpu/);
    const rows = await page.getByTestId('detection-row').evaluateAll((els) => els.map((e) => e.getAttribute('data-class')));
    expect(rows).toContain('person');
    // The box drawn over the photo is in the photo's own pixels: it must overlap the annotation.
    const box = (await page.getByTestId('detection-row').filter({ hasText: 'person' }).first().locator('td.mono').textContent())!
      .split(',')
      .map(Number);
    const [x1, y1, x2, y2] = box as [number, number, number, number];
    const annotated = [174, 101, 349, 351];
    const iw = Math.min(x2, annotated[2]!) - Math.max(x1, annotated[0]!);
    const ih = Math.min(y2, annotated[3]!) - Math.max(y1, annotated[1]!);
    const inter = iw * ih;
    const iou = inter / ((x2 - x1) * (y2 - y1) + 175 * 250 - inter);
    expect(iou).toBeGreaterThan(0.5);
    expect(await page.getByTestId('detection-box').count()).toBe(rows.length);
    await page.screenshot({ path: join(shots, 'detections-webgpu.png') });
  });

  it('filters boxes live with the score threshold', async () => {
    const { page } = lab;
    const before = await page.getByTestId('detection-row').count();
    await page.getByTestId('score-threshold').fill('0.95');
    expect(await page.getByTestId('detection-row').count()).toBeLessThan(before);
    await page.getByTestId('score-threshold').fill('0.35');
    expect(await page.getByTestId('detection-row').count()).toBe(before);
  });

  it('reports a corrupt image clearly and keeps the photo already on screen', async () => {
    const { page } = lab;
    const corrupt = join(shots, 'corrupt.jpg');
    writeFileSync(corrupt, Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.from('not really a jpeg')]));
    await page.getByTestId('image-input').setInputFiles(corrupt);
    await page.getByTestId('notice').waitFor({ timeout: 60_000 });
    expect(await page.getByTestId('notice').textContent()).toMatch(/Could not decode "corrupt.jpg".*corrupt/);
    expect(await page.getByTestId('detection-summary').textContent()).toContain('2007_000027.jpg');
    expect(await page.getByRole('img', { name: '2007_000027.jpg' }).count()).toBe(1);
  });
});

describe('the lab with the backend chosen in the URL', () => {
  it('runs on wasm when asked, and finds the same person', async () => {
    const lab = await openLab('?backend=wasm');
    try {
      const { page } = lab;
      await page.getByTestId('teacher-name').waitFor({ timeout: 120_000 });
      expect(await page.getByTestId('backend-name').textContent()).toBe('wasm');
      expect(await page.getByTestId('adapter-name').count()).toBe(0);
      await page.getByTestId('image-input').setInputFiles(join(fixtureDir, 'JPEGImages/2007_000027.jpg'));
      await page.getByTestId('detections-table').waitFor({ timeout: 120_000 });
      expect(await page.getByTestId('detection-summary').textContent()).toMatch(/on wasm/);
      const rows = await page.getByTestId('detection-row').evaluateAll((els) => els.map((e) => e.getAttribute('data-class')));
      expect(rows).toContain('person');
    } finally {
      await lab.close();
    }
  });
});
