import type { Box } from './types';

export function boxArea(b: Box): number {
  return Math.max(0, b[2] - b[0]) * Math.max(0, b[3] - b[1]);
}

/** Intersection over union of two boxes; 0 when either has no area. */
export function iou(a: Box, b: Box): number {
  const iw = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const ih = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (iw <= 0 || ih <= 0) return 0;
  const inter = iw * ih;
  const union = boxArea(a) + boxArea(b) - inter;
  return union > 0 ? inter / union : 0;
}

export function clipBox(b: Box, width: number, height: number): Box {
  return [
    Math.min(Math.max(b[0], 0), width),
    Math.min(Math.max(b[1], 0), height),
    Math.min(Math.max(b[2], 0), width),
    Math.min(Math.max(b[3], 0), height),
  ];
}
