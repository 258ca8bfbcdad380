import { afterEach, describe, expect, it } from 'vitest';
import { nodeHelperHost } from '../cli/wasm-threads';
import { readyHelpers, runWithHelpers, setHelperHost, stopHelpers } from './heap-helpers';
import { copyRunsModule } from './wasm-heap-copy';

/** The helpers of copyRuns on `memory`, once ready (they start on the first ask). */
async function ready(memory: WebAssembly.Memory, threads: number) {
  setHelperHost({ ...nodeHelperHost, threads: () => threads });
  for (let i = 0; i < 500; i++) {
    const helpers = readyHelpers(memory, 'copyRuns', copyRunsModule, 'copyRuns', 6);
    if (helpers.length === threads - 1) return helpers;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('the helpers did not start');
}

describe('helper threads on a shared wasm heap', () => {
  afterEach(() => setHelperHost(null));

  it('run their lists of calls while the caller runs its own, and are restarted once stopped', async () => {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 2, shared: true });
    const bytes = new Uint8Array(memory.buffer);
    for (let i = 0; i < 256; i++) bytes[i] = i;
    for (let round = 0; round < 2; round++) {
      const helpers = await ready(memory, 3);
      expect(helpers).toHaveLength(2);
      bytes.fill(0, 1000, 1300);
      // Helper k copies bytes 16k..16k+15 to 1000 + 100k, in two calls of 8; the caller copies 200..215 to 1200.
      const lists = [0, 1].map((k) => Int32Array.from([1000 + 100 * k, 16 * k, 8, 1, 0, 0, 1008 + 100 * k, 16 * k + 8, 8, 1, 0, 0]));
      runWithHelpers(helpers, lists, () => bytes.copyWithin(1200, 200, 216));
      expect(Array.from(bytes.subarray(1000, 1016))).toEqual(Array.from({ length: 16 }, (_, i) => i));
      expect(Array.from(bytes.subarray(1100, 1116))).toEqual(Array.from({ length: 16 }, (_, i) => 16 + i));
      expect(Array.from(bytes.subarray(1200, 1216))).toEqual(Array.from({ length: 16 }, (_, i) => 200 + i));
      stopHelpers();
    }
  });

  it("says so when a helper's call fails, and the next ask starts another", async () => {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 2, shared: true });
    const [helper] = await ready(memory, 2);
    // A copy beyond the memory's end traps in the helper.
    expect(() => runWithHelpers([helper!], [Int32Array.from([70000, 0, 64, 1, 0, 0])], () => {})).toThrow('A helper thread of the lab\'s wasm kernels failed');
    expect(await ready(memory, 2)).toHaveLength(1);
    stopHelpers();
  });

  it('give no helpers without a host, or on an unshared memory', () => {
    setHelperHost(null);
    expect(readyHelpers(new WebAssembly.Memory({ initial: 1, maximum: 2, shared: true }), 'copyRuns', copyRunsModule, 'copyRuns', 6)).toEqual([]);
    setHelperHost({ ...nodeHelperHost, threads: () => 2 });
    expect(readyHelpers(new WebAssembly.Memory({ initial: 1 }), 'copyRuns', copyRunsModule, 'copyRuns', 6)).toEqual([]);
  });
});
