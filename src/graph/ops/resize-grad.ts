/**
 * Image resizing with a correct gradient. tfjs 4.22's ResizeBilinear gradient ignores
 * half_pixel_centers (it differentiates the legacy sampling instead), which the PAN necks of
 * converted PyTorch detectors use. A resize is linear and separable, y = A_h · x · A_wᵀ per channel,
 * so its gradient is dx = A_hᵀ · dy · A_w: built here from TensorFlow's sampling rules.
 */
import * as tf from '@tensorflow/tfjs-core';

export type ResizeMode = 'bilinear' | 'nearest';

/**
 * [outSize x inSize] matrix whose row i holds the weights output i gives each input index,
 * following TensorFlow's scalers (legacy, align_corners, half_pixel_centers).
 */
export function resizeMatrix(outSize: number, inSize: number, alignCorners: boolean, halfPixel: boolean, mode: ResizeMode): Float32Array {
  const m = new Float32Array(outSize * inSize);
  const scale = alignCorners && outSize > 1 ? (inSize - 1) / (outSize - 1) : inSize / outSize;
  for (let i = 0; i < outSize; i++) {
    if (mode === 'bilinear') {
      const src = halfPixel ? (i + 0.5) * scale - 0.5 : i * scale;
      const floor = Math.floor(src);
      const lower = Math.max(floor, 0);
      const upper = Math.min(Math.ceil(src), inSize - 1);
      const lerp = src - floor;
      m[i * inSize + lower]! += 1 - lerp;
      m[i * inSize + upper]! += lerp;
    } else {
      const src = alignCorners ? Math.round(i * scale) : Math.floor(halfPixel ? (i + 0.5) * scale : i * scale);
      m[i * inSize + Math.min(Math.max(src, 0), inSize - 1)] = 1;
    }
  }
  return m;
}

/** dx [N,H,W,C] = A_hᵀ · dy · A_w for dy [N,h,w,C]. */
function resizeGradient(dy: tf.Tensor4D, ah: tf.Tensor2D, aw: tf.Tensor2D): tf.Tensor4D {
  const [n, h, w, c] = dy.shape;
  const bigW = aw.shape[1];
  const bigH = ah.shape[1];
  const alongW = tf.matMul(dy.transpose([0, 1, 3, 2]).reshape([n * h * c, w]), aw); // [n·h·c, W]
  const alongH = tf.matMul(alongW.reshape([n, h, c, bigW]).transpose([0, 2, 3, 1]).reshape([n * c * bigW, h]), ah); // [n·c·W, H]
  return alongH.reshape([n, c, bigW, bigH]).transpose([0, 3, 2, 1]) as tf.Tensor4D;
}

export function resizeWithGrad(x: tf.Tensor4D, size: [number, number], alignCorners: boolean, halfPixel: boolean, mode: ResizeMode): tf.Tensor4D {
  const [, inH, inW] = x.shape;
  const f = tf.customGrad(((xi: tf.Tensor) => {
    const xx = xi as tf.Tensor4D;
    const value = mode === 'bilinear'
      ? tf.image.resizeBilinear(xx, size, alignCorners, halfPixel)
      : tf.image.resizeNearestNeighbor(xx, size, alignCorners, halfPixel);
    const gradFunc = (dy: tf.Tensor) => {
      const ah = tf.tensor2d(resizeMatrix(size[0], inH, alignCorners, halfPixel, mode), [size[0], inH]);
      const aw = tf.tensor2d(resizeMatrix(size[1], inW, alignCorners, halfPixel, mode), [size[1], inW]);
      return resizeGradient(dy as tf.Tensor4D, ah, aw);
    };
    return { value, gradFunc };
  }) as unknown as Parameters<typeof tf.customGrad<tf.Tensor4D>>[0]);
  return f(x) as tf.Tensor4D;
}
