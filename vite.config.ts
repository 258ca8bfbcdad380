/// <reference types="vitest/config" />
import { cpSync, createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { join, normalize, resolve, sep } from 'node:path';
import react from '@vitejs/plugin-react';
import { defineConfig, type Connect, type Plugin } from 'vite';

const modelsDir = resolve(import.meta.dirname, 'models');

/**
 * Serves the top-level models/ folder at /models/ in dev and preview, and copies it into the
 * build, so model weights live in one place and are never part of src or public.
 */
function modelsFolder(): Plugin {
  const types: Record<string, string> = { '.json': 'application/json', '.bin': 'application/octet-stream' };
  const serve: Connect.NextHandleFunction = (req, res, next) => {
    const url = req.url?.split('?')[0] ?? '';
    if (!url.startsWith('/models/')) return next();
    const file = normalize(join(modelsDir, decodeURIComponent(url.slice('/models/'.length))));
    if (!file.startsWith(modelsDir + sep) || !existsSync(file) || !statSync(file).isFile()) return next();
    const ext = file.slice(file.lastIndexOf('.'));
    res.setHeader('Content-Type', types[ext] ?? 'application/octet-stream');
    res.setHeader('Content-Length', String(statSync(file).size));
    createReadStream(file).pipe(res);
  };
  let outDir: string | undefined;
  return {
    name: 'distill-lab:models-folder',
    configResolved(config) {
      // Vitest resolves this config too (with a placeholder outDir): copy only in real builds.
      if (config.command === 'build' && !process.env.VITEST) outDir = resolve(config.root, config.build.outDir);
    },
    configureServer(server) {
      server.middlewares.use(serve);
    },
    configurePreviewServer(server) {
      server.middlewares.use(serve);
    },
    closeBundle() {
      if (outDir && existsSync(modelsDir)) cpSync(modelsDir, join(outDir, 'models'), { recursive: true });
    },
  };
}

const wasmPackage = resolve(import.meta.dirname, 'node_modules/@tensorflow/tfjs-backend-wasm');
const wasmVersion = (JSON.parse(readFileSync(join(wasmPackage, 'package.json'), 'utf8')) as { version: string }).version;
/** Where the page finds tfjs-backend-wasm's multi-threaded factory, unbundled (dev, preview and build). */
const threadedFactoryPath = `/tfjs-backend-wasm/${wasmVersion}/tfjs-backend-wasm-threaded-simd.js`;
const threadedFactoryFile = join(wasmPackage, 'wasm-out/tfjs-backend-wasm-threaded-simd.js');
const threadedFactoryBlob = /new Blob\(\[`var WasmBackendModuleThreadedSimd = ` \+\s*wasmFactoryThreadedSimd\.toString\(\)\], \{ type: 'text\/javascript' \}\)/;

/**
 * tfjs-backend-wasm's kernel threads on a bundled page. Its multi-threaded binary starts each
 * thread (a worker) with a Blob of `var WasmBackendModuleThreadedSimd = ` + its factory's
 * source text (`factory.toString()`), which the thread runs with importScripts. Bundled and
 * minified, that text is no longer self-contained: the factory's `_scriptDir`, a variable of the
 * closure around it, is renamed (`e`) and its `typeof` guard dropped, so every thread dies with
 * "ReferenceError: e is not defined" and the backend never finishes loading. Here the threads get
 * the package's own unbundled factory file instead (served at `threadedFactoryPath`, copied into
 * the build): `mainScriptUrlOrBlob` becomes that file's absolute URL, which Emscripten's thread
 * worker loads with importScripts. The lab's bundled copy still runs the main thread; both are
 * the same Emscripten module (same wasm imports and messages), only minified or not.
 */
function wasmThreadsFromFile(worker = false): Plugin {
  const rewrite = (code: string, id: string): string | undefined => {
    if (!/@tensorflow[\\/]tfjs-backend-wasm[\\/]dist[\\/]backend_wasm\.js$/.test(id.split('?')[0]!)) return undefined;
    if (!threadedFactoryBlob.test(code)) {
      throw new Error(`tfjs-backend-wasm ${wasmVersion}: the threaded factory's Blob is not where it was in 4.22 (${id}); see wasmThreadsFromFile in vite.config.ts.`);
    }
    return code.replace(threadedFactoryBlob, `new URL(${JSON.stringify(threadedFactoryPath)}, self.location.href).href`);
  };
  const serve: Connect.NextHandleFunction = (req, res, next) => {
    if (req.url?.split('?')[0] !== threadedFactoryPath) return next();
    res.setHeader('Content-Type', 'text/javascript');
    res.setHeader('Content-Length', String(statSync(threadedFactoryFile).size));
    createReadStream(threadedFactoryFile).pipe(res);
  };
  return {
    name: 'distill-lab:wasm-threads',
    config: () => ({
      // The dev server pre-bundles the package: rewrite it there as well.
      optimizeDeps: { rolldownOptions: { plugins: [{ name: 'distill-lab:wasm-threads', transform: (code: string, id: string) => rewrite(code, id) }] } },
    }),
    transform(code, id) {
      return rewrite(code, id);
    },
    generateBundle() {
      // Once, from the page's build (a worker's build runs this plugin too, for the rewrite).
      if (!worker) this.emitFile({ type: 'asset', fileName: threadedFactoryPath.slice(1), source: readFileSync(threadedFactoryFile) });
    },
    configureServer(server) {
      server.middlewares.use(serve);
    },
    configurePreviewServer(server) {
      server.middlewares.use(serve);
    },
  };
}

/**
 * Cross-origin isolation, so the page and its worker may use SharedArrayBuffer: tfjs-backend-wasm
 * then loads its multi-threaded binary and runs its kernels on every core.
 */
const crossOriginIsolation = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };

export default defineConfig({
  plugins: [react(), modelsFolder(), wasmThreadsFromFile()],
  server: { headers: crossOriginIsolation },
  preview: { headers: crossOriginIsolation },
  // The lab's model worker is built with its own plugin list: it is where tfjs-backend-wasm runs.
  worker: { format: 'es', plugins: () => [wasmThreadsFromFile(true)] },
  // Pre-bundle every browser dependency on the first start. The model worker is reached through
  // `new Worker(new URL(...))`, which the dependency scan does not follow: without this list Vite
  // finds tfjs, comlink and the rest only when the worker loads, re-optimises, and reloads the page.
  optimizeDeps: {
    entries: ['index.html', 'src/worker/lab.worker.ts'],
    include: [
      '@tensorflow/tfjs',
      '@tensorflow/tfjs-core',
      '@tensorflow/tfjs-backend-wasm',
      '@tensorflow/tfjs-backend-webgpu',
      'comlink',
      'fast-xml-parser',
      'fflate',
      'nanotar',
      'react',
      'react/jsx-runtime',
      'react/jsx-dev-runtime',
      'react-dom',
      'react-dom/client',
      'zustand',
    ],
  },
  build: { target: 'es2022', chunkSizeWarningLimit: 4096 },
  test: {
    include: ['src/**/*.test.ts', 'scripts/**/*.test.ts'],
    environment: 'node',
    testTimeout: 120_000,
  },
});
