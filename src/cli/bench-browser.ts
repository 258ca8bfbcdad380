/**
 * `npm run bench -- --browser`: the lab's training step timed in headless Chromium, in a Web Worker
 * as the lab runs it, on WebGPU and on wasm (with one kernel thread, then one per logical core).
 * The bench page (bench.html, src/bench/) is built with the project's Vite config into
 * node_modules/.cache/distill-lab-bench and served by Vite's preview server, which sends the
 * cross-origin isolation headers the threaded wasm binary needs. A software WebGPU adapter
 * (SwiftShader) runs at a tiny size and is reported as a check that the step runs, not a speed.
 */
import { resolve } from 'node:path';
import { chromium } from 'playwright-core';
import type { StepBenchOptions, StepBenchPage, StepBenchResult } from '../bench/types';
import type { MethodId } from '../distill/registry';
import type { BackendName } from '../worker/backend-types';

const root = resolve(import.meta.dirname, '../..');
const outDir = resolve(root, 'node_modules/.cache/distill-lab-bench');

/**
 * Headless Chromium on Linux offers WebGPU only on SwiftShader unless its GPU process runs ANGLE on
 * Vulkan; with these flags it found the GPU's Vulkan driver (an NVIDIA H200, driver 580).
 */
export const VULKAN_ARGS = ['--use-angle=vulkan', '--enable-features=Vulkan', '--disable-vulkan-surface'];

/** Headless Chromium as root without a GPU; WebGPU through --enable-unsafe-webgpu; no network. */
const CHROMIUM_ARGS = ['--no-sandbox', '--enable-unsafe-webgpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run', '--disable-dev-shm-usage'];

export interface BrowserBenchOptions {
  backends: BackendName[];
  inputSize: number;
  batchSize: number;
  repeats: number;
  /** Method ids timed beside the plain step (each its own distillation step; all of them together as one more). */
  methods: MethodId[];
  /** Size and batch for a software GPU adapter, where only "does it run" is worth the wait. */
  softwareInputSize: number;
  chromium: string;
  /** Longest wait for one run (worker start, model load, warm-up and timed steps), in seconds. */
  runTimeoutS: number;
  /** Skip the build and serve what is already in the output folder. */
  skipBuild: boolean;
  /** Flags added to the launch (a GPU's Vulkan driver, say: see README, "WebGPU on a GPU"). */
  chromiumArgs?: string[];
  /**
   * Where bench.html is already served, with the cross-origin isolation headers (another server,
   * another machine): then nothing is built or served here, and Vite need not be installed.
   */
  pageUrl?: string;
}

const fmt = (ms: number) => `${ms.toFixed(0)} ms`;

export async function benchInBrowser(o: BrowserBenchOptions): Promise<void> {
  const served = o.pageUrl ? { url: o.pageUrl, close: async () => {} } : await serveBenchPage(o.skipBuild);
  const browser = await chromium.launch({ executablePath: o.chromium, headless: true, args: [...CHROMIUM_ARGS, ...(o.chromiumArgs ?? [])] });
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('worker', (w) => w.on('console', (m) => m.type() === 'error' && errors.push(m.text())));
    await page.goto(served.url);
    await page.waitForFunction(() => 'stepBench' in window, undefined, { timeout: 60_000 });
    const env = await page.evaluate(() => ({ isolated: window.crossOriginIsolated, cores: navigator.hardwareConcurrency, ua: navigator.userAgent }));
    console.log(`Chromium ${/Chrome\/([\d.]+)/.exec(env.ua)?.[1] ?? '?'} headless, page cross-origin isolated: ${env.isolated}, ${env.cores} logical cores`);
    const runOne = async (options: StepBenchOptions): Promise<StepBenchResult> => {
      errors.length = 0;
      try {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no result after ${o.runTimeoutS} s (a backend that never finished loading?)`)), o.runTimeoutS * 1000);
        });
        try {
          return await Promise.race([page.evaluate((opts) => (window as unknown as { stepBench: StepBenchPage }).stepBench.run(opts), options), timeout]);
        } finally {
          clearTimeout(timer);
        }
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        throw new Error(`${message}${errors.length ? `\n  page errors: ${errors.join('\n  ')}` : ''}`, { cause: error });
      }
    };
    const sets: { label: string; methods: MethodId[] }[] = [{ label: 'plain step', methods: [] }];
    if (o.methods.length) sets.push({ label: o.methods.length > 1 ? `all ${o.methods.length} methods` : o.methods[0]!, methods: o.methods });
    for (const backend of o.backends) {
      if (backend === 'webgpu') await benchWebGpu(o, sets, runOne, () => page.evaluate(() => (window as unknown as { stepBench: StepBenchPage }).stepBench.webgpuAdapter()));
      else if (backend === 'wasm') await benchWasm(o, sets, runOne, env.cores);
      else throw new Error(`--browser times webgpu and wasm, not ${backend}.`);
    }
  } finally {
    await browser.close();
    await served.close();
  }
}

/** Builds bench.html with the project's Vite config (unless skipped) and serves it with Vite's preview server. */
async function serveBenchPage(skipBuild: boolean): Promise<{ url: string; close(): Promise<void> }> {
  const { build, preview } = await import('vite');
  if (!skipBuild) {
    console.log(`building the bench page (vite build → ${outDir}) …`);
    await build({ root, logLevel: 'warn', build: { outDir, emptyOutDir: true, rolldownOptions: { input: { bench: resolve(root, 'bench.html') } } } });
  }
  const server = await preview({ root, logLevel: 'warn', build: { outDir }, preview: { port: 0, host: '127.0.0.1', strictPort: false } });
  const address = server.httpServer.address();
  if (!address || typeof address === 'string') throw new Error('The preview server has no port.');
  return { url: `http://127.0.0.1:${address.port}/bench.html`, close: () => new Promise<void>((done) => server.httpServer.close(() => done())) };
}

type Runner = (options: StepBenchOptions) => Promise<StepBenchResult>;

async function benchWebGpu(o: BrowserBenchOptions, sets: { label: string; methods: MethodId[] }[], runOne: Runner, adapter: () => Promise<{ name: string; software: boolean } | { error: string }>): Promise<void> {
  const a = await adapter();
  if ('error' in a) {
    console.log(`\nwebgpu: not available in this browser (${a.error}).`);
    return;
  }
  const size = a.software ? o.softwareInputSize : o.inputSize;
  const batch = a.software ? 1 : o.batchSize;
  // On a software adapter one plain step says that it runs; a warm-up there compiles every shader on the CPU (minutes).
  const timed = a.software ? sets.slice(0, 1) : sets;
  const repeats = a.software ? Math.min(o.repeats, 2) : o.repeats;
  console.log(`\nwebgpu, adapter: ${a.name}${a.software ? ' (software, runs on the CPU)' : ''}; batch ${batch} at ${size}x${size}, median of ${repeats} after a warm-up step`);
  if (a.software) {
    console.log('  A software adapter: this shows that the training step runs on WebGPU in the browser; it is not a speed figure for any GPU.');
    if (process.platform === 'linux' && !o.chromiumArgs?.length) console.log('  On a Linux machine with a GPU, --vulkan starts Chromium with ANGLE on Vulkan, which finds the GPU.');
  }
  printSets(await timeSets(timed, (methods) => runOne({ backend: 'webgpu', inputSize: size, batchSize: batch, repeats, methods })));
}

async function benchWasm(o: BrowserBenchOptions, sets: { label: string; methods: MethodId[] }[], runOne: Runner, cores: number): Promise<void> {
  const rows: { threads: number; note?: string; results: { label: string; r: StepBenchResult }[] }[] = [];
  let short: string | undefined;
  for (const threads of [...new Set([1, cores])]) {
    // One set first: it says whether this many threads started at all.
    const first = await runOne({ backend: 'wasm', threads, inputSize: o.inputSize, batchSize: o.batchSize, repeats: o.repeats, methods: sets[0]!.methods });
    const reported = first.report.wasmThreads;
    const got = reported?.count ?? 1;
    if (got < threads) {
      short = `asked for ${threads} threads, got ${got}${reported?.note ? ` (${reported.note})` : ''}`;
      // Fewer threads than asked (the page is not isolated, or the cap): time what it gave.
      if (got <= (rows[rows.length - 1]?.threads ?? 0)) break;
    }
    const rest = await timeSets(sets.slice(1), (methods) => runOne({ backend: 'wasm', threads, inputSize: o.inputSize, batchSize: o.batchSize, repeats: o.repeats, methods }));
    rows.push({ threads: reported?.count ?? threads, note: reported?.note, results: [{ label: sets[0]!.label, r: first }, ...rest] });
  }
  console.log(`\nwasm; batch ${o.batchSize} at ${o.inputSize}x${o.inputSize}, median of ${o.repeats} after a warm-up step`);
  for (const row of rows) {
    const helpers = row.results[0]?.r.helperThreads ?? 0;
    const shares = row.results.map(({ r }) => r.helperShare).filter((v): v is number => v !== undefined);
    const took = helpers && shares.length ? ` (they took ${shares.map((v) => `${(100 * v).toFixed(0)}%`).join(', ')} of those kernels' units)` : '';
    console.log(`  ${row.threads} thread${row.threads === 1 ? '' : 's'}${row.note ? ` (${row.note})` : ''}${helpers ? `, ${helpers} helper thread${helpers === 1 ? '' : 's'} for the lab's own kernels${took}` : ''}`);
    printSets(row.results);
  }
  if (rows.length > 1) {
    const [one, all] = [rows[0]!, rows[rows.length - 1]!];
    for (const [i, set] of sets.entries()) {
      console.log(`  ${set.label}: ${all.threads} threads run it ${(one.results[i]!.r.medianMs / all.results[i]!.r.medianMs).toFixed(2)}x as fast as 1 thread`);
    }
  }
  if (short) console.log(`  ${short}`);
}

async function timeSets(sets: { label: string; methods: MethodId[] }[], run: (methods: MethodId[]) => Promise<StepBenchResult>) {
  const out: { label: string; r: StepBenchResult }[] = [];
  for (const set of sets) out.push({ label: set.label, r: await run(set.methods) });
  return out;
}

function printSets(results: { label: string; r: StepBenchResult }[]): void {
  const plain = results[0]!.r.medianMs;
  for (const { label, r } of results) {
    const ratio = r === results[0]!.r ? '' : `   ${(r.medianMs / plain).toFixed(2)}x the plain step`;
    console.log(`    ${label.padEnd(16)} ${fmt(r.medianMs).padStart(9)} per step   ${((r.batchSize * 1000) / r.medianMs).toFixed(2)} img/s   warm-up ${fmt(r.warmupMs)}   loss ${r.loss.toFixed(3)}${ratio}`);
  }
}
