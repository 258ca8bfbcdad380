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
