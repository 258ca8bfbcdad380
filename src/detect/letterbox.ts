import type { Box } from './types';

/**
 * How an image of `sourceWidth` x `sourceHeight` sits inside a square model input of side
 * `inputSize` after a letterbox: scaled to fit, aspect ratio kept, centred, rest padded.
 * Scale factors are per axis because the resized size is rounded to whole pixels; using the
 * rounded sizes makes mapping back the exact inverse of the resize that was performed.
 */
export interface Letterbox {
  sourceWidth: number;
  sourceHeight: number;
  inputSize: number;
  /** Size of the resized image inside the input, in pixels. */
  resizedWidth: number;
  resizedHeight: number;
  /** Offset of the resized image's top-left corner inside the input. */
  padLeft: number;
  padTop: number;
}

export function computeLetterbox(sourceWidth: number, sourceHeight: number, inputSize: number): Letterbox {
  if (!(sourceWidth > 0 && sourceHeight > 0)) {
    throw new Error(`Cannot letterbox an image of ${sourceWidth}x${sourceHeight}: it has no pixels.`);
  }
  const scale = Math.min(inputSize / sourceWidth, inputSize / sourceHeight);
  const resizedWidth = Math.max(1, Math.min(inputSize, Math.round(sourceWidth * scale)));
  const resizedHeight = Math.max(1, Math.min(inputSize, Math.round(sourceHeight * scale)));
  return {
    sourceWidth,
    sourceHeight,
    inputSize,
    resizedWidth,
    resizedHeight,
    padLeft: Math.floor((inputSize - resizedWidth) / 2),
    padTop: Math.floor((inputSize - resizedHeight) / 2),
  };
}

/** A box in source-image pixels → the same box in model-input pixels. */
export function sourceToInput(lb: Letterbox, b: Box): Box {
  const sx = lb.resizedWidth / lb.sourceWidth;
  const sy = lb.resizedHeight / lb.sourceHeight;
  return [b[0] * sx + lb.padLeft, b[1] * sy + lb.padTop, b[2] * sx + lb.padLeft, b[3] * sy + lb.padTop];
}

/** A box in model-input pixels → source-image pixels, clipped to the image. */
export function inputToSource(lb: Letterbox, b: Box): Box {
  const sx = lb.sourceWidth / lb.resizedWidth;
  const sy = lb.sourceHeight / lb.resizedHeight;
  const clampX = (x: number) => Math.min(Math.max((x - lb.padLeft) * sx, 0), lb.sourceWidth);
  const clampY = (y: number) => Math.min(Math.max((y - lb.padTop) * sy, 0), lb.sourceHeight);
  return [clampX(b[0]), clampY(b[1]), clampX(b[2]), clampY(b[3])];
}
