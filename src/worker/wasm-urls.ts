// Tells the wasm backend where the bundler put its .wasm binaries (browser builds only;
// in Node the backend finds them next to its own module).
import { env } from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import wasmPlainUrl from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import wasmSimdUrl from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import wasmThreadedUrl from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';

setWasmPaths({
  'tfjs-backend-wasm.wasm': wasmPlainUrl,
  'tfjs-backend-wasm-simd.wasm': wasmSimdUrl,
  'tfjs-backend-wasm-threaded-simd.wasm': wasmThreadedUrl,
});

// tfjs-backend-wasm 4.22 starts the threads of its multi-threaded binary from a Blob of its
// factory's source text (`factory.toString()`); once bundled, that text names variables of the
// bundle that the thread workers do not have ("ReferenceError: e is not defined"), and the
// backend never finishes loading. Until it loads its factory from a file, the bundled lab uses
// the single-threaded SIMD binary, and the backend report says so.
env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
