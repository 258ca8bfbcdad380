import { afterEach, describe, expect, it } from 'vitest';
import { nodeHelperHost } from '../cli/wasm-threads';
import { readyHelpers, runUnits, setHelperHost, stopHelpers } from './heap-helpers';
import type { CopyRuns } from './wasm-heap-copy';
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

  it('take units of calls with the caller until none is left, each unit in order, and are restarted once stopped', async () => {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 2, shared: true });
    const bytes = new Uint8Array(memory.buffer);
    const copy = new WebAssembly.Instance(new WebAssembly.Module(copyRunsModule(true)), { env: { memory } }).exports['copyRuns'] as CopyRuns;
    for (let i = 0; i < 256; i++) bytes[i] = i;
    for (let round = 0; round < 2; round++) {
      const helpers = await ready(memory, 3);
      expect(helpers).toHaveLength(2);
      bytes.fill(0, 1000, 1300);
      // 30 units of 2 calls: unit u copies bytes 8u..8u+7 to 1000 + 8u, then adds byte 8u to 1000 + 8u + 7
      // through a copy of 1 byte: in order, the unit's second call overwrites the first one's last byte.
      const calls: number[] = [];
      for (let u = 0; u < 30; u++) calls.push(1000 + 8 * u, 8 * u, 8, 1, 0, 0, 1000 + 8 * u + 7, 8 * u, 1, 1, 0, 0);
      let own = 0;
      runUnits(helpers, Int32Array.from(calls), 6, 2, (call) => {
        own += 1;
        copy(...(Array.from(call) as Parameters<CopyRuns>));
      });
      for (let u = 0; u < 30; u++) expect(Array.from(bytes.subarray(1000 + 8 * u, 1008 + 8 * u))).toEqual([...Array.from({ length: 7 }, (_, i) => 8 * u + i), 8 * u]);
      // The caller ran whole units, not all of them (the helpers took some).
      expect(own % 2).toBe(0);
      stopHelpers();
    }
  });

  it("says so when a helper's call fails, and the next ask starts another", async () => {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 2, shared: true });
    const [helper] = await ready(memory, 2);
    // Copies beyond the memory's end trap in the helper; the caller takes 20 ms over each unit it
    // takes (and copies nothing), so the helper takes some.
    const calls = Int32Array.from(Array.from({ length: 8 }, () => [70000, 0, 64, 1, 0, 0]).flat());
    const slowly = () => {
      for (const t0 = Date.now(); Date.now() - t0 < 20; );
    };
    expect(() => runUnits([helper!], calls, 6, 1, slowly)).toThrow("A helper thread of the lab's wasm kernels failed");
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
