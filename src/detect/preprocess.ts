import * as tf from '@tensorflow/tfjs-core';
import type { RgbImage } from '../data/image';
import type { ModelManifest } from '../models/manifest';
import type { Letterbox } from './letterbox';

/**
 * Image pixels → the model's input tensor [1,3,S,S] (NCHW) or [1,S,S,3] (NHWC): letterbox
 * (bilinear resize with half-pixel centres, as cv2.resize; padding at the raw pad value),
 * channel order, then (x − mean) / std. The caller owns the returned tensor.
 */
export function preprocessImage(image: RgbImage, lb: Letterbox, manifest: Pick<ModelManifest, 'preprocess' | 'input'>): tf.Tensor4D {
  const { preprocess, input } = manifest;
  return tf.tidy(() => {
    const pixels = tf.tensor3d(Int32Array.from(image.data), [image.height, image.width, image.channels], 'int32');
    const rgb = image.channels === 4 ? pixels.slice([0, 0, 0], [-1, -1, 3]) : pixels;
    const resized = tf.image.resizeBilinear(rgb.toFloat(), [lb.resizedHeight, lb.resizedWidth], false, true);
    const padded = tf.pad(
      resized,
      [
        [lb.padTop, lb.inputSize - lb.resizedHeight - lb.padTop],
        [lb.padLeft, lb.inputSize - lb.resizedWidth - lb.padLeft],
        [0, 0],
      ],
      preprocess.padValue,
    );
    const ordered = preprocess.channelOrder === 'BGR' ? tf.reverse(padded, 2) : padded;
    const normalized = ordered.sub(tf.tensor1d(preprocess.mean)).div(tf.tensor1d(preprocess.std));
    const layouted = input.layout === 'NCHW' ? normalized.transpose([2, 0, 1]) : normalized;
    return layouted.expandDims(0) as tf.Tensor4D;
  });
}
