import { afterEach, describe, expect, it } from 'vitest';
import { nodeHelperHost } from '../cli/wasm-threads';
import { helperModule, helperShareSince, helperUnitCounts, readyHelpers, runUnits, setHelperHost, startHelpers, stopHelpers, type EachCall } from './heap-helpers';
import { copyRunsModule } from './wasm-heap-copy';

helperModule('copyRuns', copyRunsModule, 6);

/** The helpers of copyRuns on `memory`, once ready (they start on the first ask). */
async function ready(memory: WebAssembly.Memory, threads: number) {
  setHelperHost({ ...nodeHelperHost, threads: () => threads });
  for (let i = 0; i < 500; i++) {
    const helpers = readyHelpers(memory, 'copyRuns');
    if (helpers.length === threads - 1) return helpers;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('the helpers did not start');
}

/** copyRuns' each(at, count) on `memory`, for the caller. */
function eachOn(memory: WebAssembly.Memory): EachCall {
  return new WebAssembly.Instance(new WebAssembly.Module(copyRunsModule(true)), { env: { memory } }).exports['each'] as EachCall;
}

describe('helper threads on a shared wasm heap', () => {
  afterEach(() => setHelperHost(null));

  it('take units of calls listed on the heap with the caller until none is left, each unit in order, and are restarted once stopped', async () => {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 2, shared: true });
    const bytes = new Uint8Array(memory.buffer);
    const words = new Int32Array(memory.buffer);
    const each = eachOn(memory);
    const LIST = 4096;
    for (let i = 0; i < 256; i++) bytes[i] = i;
    for (let round = 0; round < 2; round++) {
      const helpers = await ready(memory, 3);
      expect(helpers).toHaveLength(2);
      bytes.fill(0, 1000, 1300);
      // 30 units of 2 calls: unit u copies bytes 8u..8u+7 to 1000 + 8u, then adds byte 8u to 1000 + 8u + 7
      // through a copy of 1 byte: in order, the unit's second call overwrites the first one's last byte.
      const calls: number[] = [];
      for (let u = 0; u < 30; u++) calls.push(1000 + 8 * u, 8 * u, 8, 1, 0, 0, 1000 + 8 * u + 7, 8 * u, 1, 1, 0, 0);
      words.set(calls, LIST / 4);
      let own = 0;
      const before = helperUnitCounts();
      runUnits(helpers, (at, count) => {
        own += count;
        each(at, count);
      }, LIST, 6, 30, 2);
      // Counted: every unit, and those the helpers ran.
      const after = helperUnitCounts();
      expect(after.units - before.units).toBe(30);
      expect(after.byHelpers - before.byHelpers).toBe(30 - own / 2);
      expect(helperShareSince(before)).toBe((30 - own / 2) / 30);
      for (let u = 0; u < 30; u++) expect(Array.from(bytes.subarray(1000 + 8 * u, 1008 + 8 * u))).toEqual([...Array.from({ length: 7 }, (_, i) => 8 * u + i), 8 * u]);
      // The caller ran whole units.
      expect(own % 2).toBe(0);
      stopHelpers();
    }
  });

  it('never run a job with the list of another: one job after another on the same list, each with its own copies', async () => {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 2, shared: true });
    const bytes = new Uint8Array(memory.buffer);
    const words = new Int32Array(memory.buffer);
    const each = eachOn(memory);
    const helpers = await ready(memory, 3);
    for (let i = 0; i < 256; i++) bytes[i] = i;
    // Job j copies 8 bytes from 8·(j mod 32) into each of 16 slots (a unit each); a helper that
    // woke for an earlier job and ran this one's units with that job's count or list would leave
    // a slot wrong, or write past the 16.
    for (let j = 0; j < 300; j++) {
      const units = 8 + (j % 9);
      bytes.fill(255, 2000, 2000 + 8 * 17);
      words.set(Array.from({ length: units }, (_, u) => [2000 + 8 * u, 8 * (j % 32), 8, 1, 0, 0]).flat(), 4096 / 4);
      runUnits(helpers, each, 4096, 6, units, 1);
      for (let u = 0; u < units; u++) expect(Array.from(bytes.subarray(2000 + 8 * u, 2008 + 8 * u))).toEqual(Array.from({ length: 8 }, (_, i) => 8 * (j % 32) + i));
      expect(Array.from(bytes.subarray(2000 + 8 * units, 2000 + 8 * 17)).every((b) => b === 255)).toBe(true);
    }
    stopHelpers();
  });

  it("says so when a helper's call fails, and the next ask starts another", async () => {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 2, shared: true });
    const [helper] = await ready(memory, 2);
    // Copies beyond the memory's end trap in the helper; the caller takes 20 ms over each unit it
    // takes (and copies nothing), so the helper takes some.
    new Int32Array(memory.buffer).set(Array.from({ length: 8 }, () => [70000, 0, 64, 1, 0, 0]).flat(), 1024 / 4);
    const slowly = () => {
      for (const t0 = Date.now(); Date.now() - t0 < 20; );
    };
    expect(() => runUnits([helper!], slowly, 1024, 6, 8, 1)).toThrow("A helper thread of the lab's wasm kernels failed");
    expect(await ready(memory, 2)).toHaveLength(1);
    stopHelpers();
  });

  it('start every module\'s helpers at once, and say how many are ready', async () => {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 2, shared: true });
    setHelperHost({ ...nodeHelperHost, threads: () => 3 });
    expect(await startHelpers(memory)).toBe(2);
    expect(readyHelpers(memory, 'copyRuns')).toHaveLength(2);
    stopHelpers();
    setHelperHost(null);
    expect(await startHelpers(memory)).toBe(0);
  });

  it('give no helpers without a host, or on an unshared memory', () => {
    setHelperHost(null);
    expect(readyHelpers(new WebAssembly.Memory({ initial: 1, maximum: 2, shared: true }), 'copyRuns')).toEqual([]);
    setHelperHost({ ...nodeHelperHost, threads: () => 2 });
    expect(readyHelpers(new WebAssembly.Memory({ initial: 1 }), 'copyRuns')).toEqual([]);
  });
});
