import type { Pads } from './conv-grad';

/** A convolution the gradient tests run: x [N,H,W,Ci], filter [KH,KW,Ci,Co], explicit pads [top, bottom, left, right]. */
export interface ConvCase {
  name: string;
  x: [number, number, number, number];
  k: [number, number, number, number];
  strides: [number, number];
  pads: Pads;
  dilations: [number, number];
}

/** tfjs's explicit padding of an NHWC tensor for pads [top, bottom, left, right]. */
export function explicitPadding(p: Pads): [[number, number], [number, number], [number, number], [number, number]] {
  return [[0, 0], [p[0], p[1]], [p[2], p[3]], [0, 0]];
}
