/**
 * The tables that tell the lab's wasm convolution (wasm-conv.ts) where each output position reads
 * its input, for a convolution and for a convolution's input gradient, one spatial axis at a time.
 *
 * A phase is a grid of output positions that all see the same taps: a convolution has one; the
 * input gradient of a convolution of stride s has s per axis, since input row i takes the taps t
 * with (i + pad − t·dilation) ≡ 0 (mod s), and only those (about k/s of them), from dy row
 * (i + pad − t·dilation) / s. Spreading dy with zeros and running every tap would multiply by
 * those zeros too, s² times the work.
 */

/** One axis of a phase. */
export interface AxisPhase {
  /** The output index of each of the phase's rows (or columns). */
  out: number[];
  /** The filter taps the phase uses on this axis, in the order its filter holds them. */
  taps: number[];
  /** Per row and tap (row-major, `out.length` × `taps.length`): the source index it reads, or −1 (padding: zeros). */
  reads: number[];
}

/** A 2-D phase: its rows and columns, and where its filter starts in the kernel's filter input (in taps). */
export interface ConvPhase {
  rows: AxisPhase;
  cols: AxisPhase;
  firstTap: number;
}

const inRange = (i: number, size: number) => (i >= 0 && i < size ? i : -1);

/**
 * Axes already made, by kind and arguments: a training step asks for the same few dozen every
 * time (each layer's forward and input gradient). Callers only read them.
 */
const made = new Map<string, AxisPhase | AxisPhase[]>();
const MADE_AT_MOST = 1024;
function remembered<T extends AxisPhase | AxisPhase[]>(key: string, make: () => T): T {
  let axis = made.get(key) as T | undefined;
  if (!axis) {
    if (made.size >= MADE_AT_MOST) made.clear();
    made.set(key, (axis = make()));
  }
  return axis;
}

/** The forward axis: output o reads input o·stride + t·dilation − padBefore at tap t. */
export function forwardAxis(outSize: number, inSize: number, k: number, stride: number, dilation: number, padBefore: number): AxisPhase {
  return remembered(`f ${outSize} ${inSize} ${k} ${stride} ${dilation} ${padBefore}`, () => makeForwardAxis(outSize, inSize, k, stride, dilation, padBefore));
}

function makeForwardAxis(outSize: number, inSize: number, k: number, stride: number, dilation: number, padBefore: number): AxisPhase {
  const out = Array.from({ length: outSize }, (_, o) => o);
  const taps = Array.from({ length: k }, (_, t) => t);
  const reads = out.flatMap((o) => taps.map((t) => inRange(o * stride + t * dilation - padBefore, inSize)));
  return { out, taps, reads };
}

/**
 * The input-gradient axis: input row i (the gradient's output) takes, at tap t, dy row
 * (i + padBefore − t·dilation) / stride where that is a whole number: one phase per residue of i
 * modulo the stride (phases whose rows lie beyond the input are left out).
 */
export function inputGradientAxis(inSize: number, dySize: number, k: number, stride: number, dilation: number, padBefore: number): AxisPhase[] {
  return remembered(`g ${inSize} ${dySize} ${k} ${stride} ${dilation} ${padBefore}`, () => makeInputGradientAxis(inSize, dySize, k, stride, dilation, padBefore));
}

function makeInputGradientAxis(inSize: number, dySize: number, k: number, stride: number, dilation: number, padBefore: number): AxisPhase[] {
  const phases: AxisPhase[] = [];
  for (let a = 0; a < Math.min(stride, inSize); a++) {
    const out: number[] = [];
    for (let i = a; i < inSize; i += stride) out.push(i);
    const taps = Array.from({ length: k }, (_, t) => t).filter((t) => (((a + padBefore - t * dilation) % stride) + stride) % stride === 0);
    const reads = out.flatMap((i) => taps.map((t) => inRange((i + padBefore - t * dilation) / stride, dySize)));
    phases.push({ out, taps, reads });
  }
  return phases;
}

/** Every pair of a row phase and a column phase, and the taps ([ty·kw + tx]) their filters hold, in order. */
export function phases2d(rowPhases: AxisPhase[], colPhases: AxisPhase[], kw: number): { phases: ConvPhase[]; tapOrder: number[] } {
  const phases: ConvPhase[] = [];
  const tapOrder: number[] = [];
  for (const rows of rowPhases) {
    for (const cols of colPhases) {
      phases.push({ rows, cols, firstTap: tapOrder.length });
      for (const ty of rows.taps) for (const tx of cols.taps) tapOrder.push(ty * kw + tx);
    }
  }
  return { phases, tapOrder };
}
