import { defineConfig } from 'vitest/config';

// End-to-end tests: the built app (dist/) in Debian's headless Chromium, WebGPU on SwiftShader.
export default defineConfig({
  test: {
    root: import.meta.dirname,
    include: ['**/*.e2e.ts'],
    environment: 'node',
    fileParallelism: false,
    testTimeout: 300_000,
    hookTimeout: 180_000,
  },
});
