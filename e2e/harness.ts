import { resolve } from 'node:path';
import { chromium, type Browser, type BrowserContext, type ConsoleMessage, type Page } from 'playwright-core';
import { preview, type PreviewServer } from 'vite';

export const root = resolve(import.meta.dirname, '..');
export const fixtureDir = resolve(root, '../shared/voc-fixture/VOCdevkit/VOC2012');
export const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * Flags for Debian's Chromium, headless, as root, on a machine without a GPU: WebGPU on
 * SwiftShader (--enable-unsafe-webgpu), and no background network traffic (the network is closed).
 */
export const chromiumArgs = [
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
  '--disable-dev-shm-usage',
];

export interface Lab {
  server: PreviewServer;
  url: string;
  browser: Browser;
  context: BrowserContext;
  page: Page;
  logs: string[];
  close(): Promise<void>;
}

/** Serves the built app (dist/) with Vite's preview server and opens it in headless Chromium. */
export async function openLab(query = ''): Promise<Lab> {
  const server = await preview({ root, preview: { port: 0, host: '127.0.0.1', strictPort: false }, logLevel: 'warn' });
  const address = server.httpServer.address();
  if (!address || typeof address === 'string') throw new Error('preview server has no port');
  const url = `http://127.0.0.1:${address.port}/${query}`;
  const browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: chromiumArgs });
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  const logs: string[] = [];
  const log = (m: ConsoleMessage) => logs.push(`[${m.type()}] ${m.text()}`);
  page.on('console', log);
  page.on('pageerror', (e) => logs.push(`[pageerror] ${e.message}`));
  page.on('worker', (w) => w.on('console', log));
  await page.goto(url);
  return {
    server,
    url,
    browser,
    context,
    page,
    logs,
    async close() {
      await browser.close();
      await new Promise<void>((done) => server.httpServer.close(() => done()));
    },
  };
}

/** The fixture's root (VOCdevkit/VOC2012 inside), as a folder picked with <input webkitdirectory>. */
export const fixtureRoot = resolve(root, '../shared/voc-fixture');

/**
 * Element screenshots of panels taller than the window are stitched while scrolling, and the
 * sticky header would land in the middle of them: pin it to the top of the page for pictures.
 */
export async function unstickHeader(page: Page): Promise<void> {
  await page.addStyleTag({ content: '.app .top { position: static !important; }' });
}

/** Waits for both models, then picks the fixture folder and waits for the split summaries. */
export async function loadFixture(page: Page): Promise<void> {
  await unstickHeader(page);
  await page.getByTestId('student-name').waitFor({ timeout: 120_000 });
  await page.getByTestId('teacher-name').waitFor({ timeout: 120_000 });
  await page.getByTestId('data-folder').setInputFiles(fixtureRoot);
  await page.getByTestId('split-train-images').waitFor({ timeout: 60_000 });
}

/** A run SwiftShader can do in seconds per step: tiny input, batch 1, a few images. */
export async function configureSmallRun(page: Page, o: { methods: string[]; images: number; inputSize?: number; checkpointEvery?: number; evalImages?: number; gradientSharesEvery?: number }) {
  await page.getByTestId('schedule-inputSize').selectOption(String(o.inputSize ?? 64));
  await page.getByTestId('schedule-batchSize').fill('1');
  await page.getByTestId('schedule-epochs').fill('1');
  await page.getByTestId('schedule-steps-field').fill('0');
  await page.getByTestId('schedule-warmupSteps').fill('0');
  await page.getByTestId('max-train-images').fill(String(o.images));
  await page.getByTestId('max-eval-images').fill(String(o.evalImages ?? 2));
  await page.getByTestId('checkpoint-every').fill(String(o.checkpointEvery ?? 20));
  // Measuring gradient shares costs a step per loss part: off unless a test asks for it.
  await page.getByTestId('gradient-norms-every').fill(String(o.gradientSharesEvery ?? 0));
  for (const m of o.methods) await page.getByTestId(`method-toggle-${m}`).check();
}

/** Waits until the step counter shows at least `step`. */
export async function waitForStep(page: Page, step: number, timeout = 240_000): Promise<void> {
  await page.waitForFunction(
    (n) => {
      const text = document.querySelector('[data-testid="train-step"]')?.textContent ?? '';
      return Number(text.split('/')[0]) >= n;
    },
    step,
    { timeout, polling: 250 },
  );
}

/** What the training panel says, for failure messages: status, step and error. */
export async function trainingState(page: Page): Promise<string> {
  const text = async (id: string) => ((await page.getByTestId(id).count()) ? ((await page.getByTestId(id).first().textContent()) ?? '') : '(none)');
  return `status "${await text('train-status')}", step "${await text('train-step')}", error "${await text('train-error')}"`;
}

/**
 * Waits for `locator`; on a timeout the error says what the training panel showed and the page's
 * last log lines, so a failure far from this machine says where the run stood.
 */
export async function waitForOrExplain(lab: Lab, locator: ReturnType<Page['locator']>, timeout: number): Promise<void> {
  try {
    await locator.waitFor({ timeout });
  } catch (error) {
    throw new Error(`${(error as Error).message}\nthe training panel: ${await trainingState(lab.page)}\nlast page logs:\n${lab.logs.slice(-15).join('\n')}`, { cause: error });
  }
}

/**
 * Waits until the page draws two frames, and returns how long that took. Element screenshots and
 * clicks wait for frames too, but give up after their own timeout; on SwiftShader the GPU process
 * that draws the page also runs WebGPU, and a loaded machine can hold its frames back for tens of
 * seconds after heavy WebGPU work.
 */
export async function waitForFrames(page: Page, timeout = 120_000): Promise<number> {
  const started = Date.now();
  await page.waitForFunction(() => new Promise<boolean>((done) => requestAnimationFrame(() => requestAnimationFrame(() => done(true)))), undefined, { timeout, polling: 'raf' });
  return Date.now() - started;
}
