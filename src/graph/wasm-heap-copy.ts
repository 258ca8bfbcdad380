/**
 * Copies inside tfjs-backend-wasm's heap with WebAssembly's own `memory.copy`.
 *
 * The kernels that tfjs-wasm writes in JavaScript (Slice, Concat, SplitV) copy with
 * TypedArray.set, and so did this project's replacements. On the threaded binary the heap is a
 * SharedArrayBuffer, and V8 copies shared memory element by element: 2.7 ns per float against
 * 0.17 for `memory.copy` on the same memory, a 16x gap for one contiguous copy and 7x for a
 * feature map's window of 52-float rows (0.53 against 3.6 ns). A module of one function, built
 * here from its bytes and instantiated on the backend's own memory, does the copies instead.
 * `heapFunction` does the same for the lab's other small modules (wasm-elementwise.ts, wasm-tile.ts).
 */
import { oneFunctionModule, VALTYPE } from './wasm-binary';

/** `count` runs of `bytes` bytes, the i-th from `from + i·fromStride` to `to + i·toStride` (byte offsets in the heap). */
export type CopyRuns = (to: number, from: number, bytes: number, count: number, fromStride: number, toStride: number) => void;

/** The Emscripten module of tfjs-backend-wasm: its memory is `wasmMemory` (threaded) or exported as `asm.memory`. */
interface EmscriptenModule {
  HEAPU8: Uint8Array;
  wasmMemory?: WebAssembly.Memory;
  asm?: { memory?: WebAssembly.Memory };
}

const copiers = new WeakMap<object, CopyRuns>();

/** The copier for the backend whose Emscripten module is `wasm` (`backend.wasm`). */
export function heapCopier(wasm: object): CopyRuns {
  let copier = copiers.get(wasm);
  if (!copier) {
    copier = makeCopier(wasm as EmscriptenModule);
    copiers.set(wasm, copier);
  }
  return copier;
}

/** The backend's WebAssembly.Memory (its heap), or undefined where this build does not show it. */
export function heapMemory(wasm: object): WebAssembly.Memory | undefined {
  const module = wasm as EmscriptenModule;
  return [module.wasmMemory, module.asm?.memory].find((m) => m instanceof WebAssembly.Memory && m.buffer === module.HEAPU8.buffer);
}

/** Functions of the modules instantiated on each heap memory, by key. */
const onHeap = new WeakMap<WebAssembly.Memory, Map<string, unknown>>();

/**
 * The function `name` of the module `build(sharedMemory)`, instantiated on the heap of the backend
 * whose Emscripten module is `wasm` once per heap and `key`; undefined where this build does not
 * show its memory. The module imports the heap as env.memory (`oneFunctionModule`).
 */
export function heapFunction<F>(wasm: object, key: string, build: (sharedMemory: boolean) => Uint8Array<ArrayBuffer>, name: string): F | undefined {
  const memory = heapMemory(wasm);
  if (!memory) return undefined;
  let functions = onHeap.get(memory);
  if (!functions) onHeap.set(memory, (functions = new Map()));
  let f = functions.get(key) as F | undefined;
  if (!f) {
    const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
    f = new WebAssembly.Instance(new WebAssembly.Module(build(shared)), { env: { memory } }).exports[name] as F;
    functions.set(key, f);
  }
  return f;
}

function makeCopier(module: EmscriptenModule): CopyRuns {
  // Offsets above 2 GiB reach the i32 parameters as negative numbers; memory.copy reads them unsigned.
  const copyRuns = heapFunction<CopyRuns>(module, 'copyRuns', copyRunsModule, 'copyRuns');
  if (copyRuns) return copyRuns;
  // A build whose memory this cannot find: the same copies through a view of the heap.
  return (to, from, bytes, count, fromStride, toStride) => {
    const heap = new Uint8Array(module.HEAPU8.buffer);
    for (let i = 0; i < count; i++) heap.copyWithin(to + i * toStride, from + i * fromStride, from + i * fromStride + bytes);
  };
}

/**
 * The binary of
 *   (module (import "env" "memory" (memory 0 [65536 shared]))
 *     (func (export "copyRuns") (param $to i32) (param $from i32) (param $bytes i32)
 *                               (param $count i32) (param $fromStride i32) (param $toStride i32)
 *       (block (br_if 0 (i32.eqz (local.get $count)))
 *         (loop (memory.copy (local.get $to) (local.get $from) (local.get $bytes))
 *           (local.set $to (i32.add (local.get $to) (local.get $toStride)))
 *           (local.set $from (i32.add (local.get $from) (local.get $fromStride)))
 *           (br_if 0 (local.tee $count (i32.sub (local.get $count) (i32.const 1))))))))
 */
export function copyRunsModule(sharedMemory: boolean): Uint8Array<ArrayBuffer> {
  const [to, from, bytes, count, fromStride, toStride] = [0, 1, 2, 3, 4, 5];
  const get = (i: number) => [0x20, i];
  const code = [
    0x00, // no locals besides the parameters
    0x02, 0x40, ...get(count), 0x45, 0x0d, 0x00, // block; br_if 0 when count == 0
    0x03, 0x40, // loop
    ...get(to), ...get(from), ...get(bytes), 0xfc, 0x0a, 0x00, 0x00, // memory.copy
    ...get(to), ...get(toStride), 0x6a, 0x21, to,
    ...get(from), ...get(fromStride), 0x6a, 0x21, from,
    ...get(count), 0x41, 0x01, 0x6b, 0x22, count, 0x0d, 0x00, // count -= 1; continue while count != 0
    0x0b, 0x0b, 0x0b, // end loop, block, function
  ];
  const i32 = VALTYPE.i32;
  return oneFunctionModule(sharedMemory, 'copyRuns', [i32, i32, i32, i32, i32, i32], code, true);
}
