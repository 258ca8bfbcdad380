/** An axis-aligned box in pixels: [x1, y1, x2, y2], x2 > x1 and y2 > y1 for a real box. */
export type Box = readonly [number, number, number, number];

/** One detection: a box in the coordinate frame its producer states, a class and a score. */
export interface Detection {
  box: Box;
  classIndex: number;
  score: number;
}

/** A detection with its class name, in the original image's pixel coordinates. */
export interface LabeledDetection extends Detection {
  className: string;
}
