// Tells the wasm backend where the bundler put its .wasm binaries (browser builds only;
// in Node the backend finds them next to its own module).
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import wasmPlainUrl from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import wasmSimdUrl from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import wasmThreadedUrl from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';

setWasmPaths({
  'tfjs-backend-wasm.wasm': wasmPlainUrl,
  'tfjs-backend-wasm-simd.wasm': wasmSimdUrl,
  'tfjs-backend-wasm-threaded-simd.wasm': wasmThreadedUrl,
});

// The multi-threaded binary loads where the page is cross-origin isolated (tfjs checks for
// SharedArrayBuffer). Its threads load the package's unbundled factory file, not the bundle's
// source text (vite.config.ts, wasmThreadsFromFile, says why).
