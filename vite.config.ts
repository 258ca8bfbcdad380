/// <reference types="vitest/config" />
import { cpSync, createReadStream, existsSync, statSync } from 'node:fs';
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

/**
 * Cross-origin isolation, so the page and its worker may use SharedArrayBuffer: tfjs-backend-wasm
 * then loads its multi-threaded binary and runs its kernels on every core.
 */
const crossOriginIsolation = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };

export default defineConfig({
  plugins: [react(), modelsFolder()],
  server: { headers: crossOriginIsolation },
  preview: { headers: crossOriginIsolation },
  worker: { format: 'es' },
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
