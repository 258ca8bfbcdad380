/**
 * Ridge least squares from accumulated moments, in float64 on the host: the fits here are small
 * (at most a few thousand unknowns per output), and tfjs has no linear solver worth using.
 *
 * A fit accumulates the sums of X, Y, XᵀX and XᵀY over rows streamed in batches, then solves for
 * W, b minimising Σ‖x W + b − y‖² + λ‖W‖² with the intercept unpenalised (by centring).
 */

export class MomentAccumulator {
  readonly sumX: Float64Array;
  readonly sumY: Float64Array;
  /** Row-major K x K. */
  readonly xtx: Float64Array;
  /** Row-major K x M. */
  readonly xty: Float64Array;
  rows = 0;
  constructor(
    readonly inputs: number,
    readonly outputs: number,
  ) {
    this.sumX = new Float64Array(inputs);
    this.sumY = new Float64Array(outputs);
    this.xtx = new Float64Array(inputs * inputs);
    this.xty = new Float64Array(inputs * outputs);
  }

  /**
   * Adds precomputed products of one batch of `rows` rows: XᵀX (K x K), XᵀY (K x M) and the
   * column sums of X and Y (as a device computes them in one pass).
   */
  addProducts(rows: number, xtx: ArrayLike<number>, xty: ArrayLike<number>, sumX: ArrayLike<number>, sumY: ArrayLike<number>): void {
    const { inputs: k, outputs: m } = this;
    if (xtx.length !== k * k || xty.length !== k * m || sumX.length !== k || sumY.length !== m) throw new Error('Moment shapes do not match the fit.');
    for (let i = 0; i < k * k; i++) this.xtx[i]! += xtx[i]!;
    for (let i = 0; i < k * m; i++) this.xty[i]! += xty[i]!;
    for (let i = 0; i < k; i++) this.sumX[i]! += sumX[i]!;
    for (let i = 0; i < m; i++) this.sumY[i]! += sumY[i]!;
    this.rows += rows;
  }

  /** Adds rows given as row-major arrays (x: rows x K, y: rows x M); for small fits and tests. */
  addRows(x: ArrayLike<number>, y: ArrayLike<number>): void {
    const { inputs: k, outputs: m } = this;
    const rows = x.length / k;
    if (!Number.isInteger(rows) || y.length !== rows * m) throw new Error('Row arrays do not match the fit.');
    const xtx = new Float64Array(k * k);
    const xty = new Float64Array(k * m);
    const sx = new Float64Array(k);
    const sy = new Float64Array(m);
    for (let r = 0; r < rows; r++) {
      for (let i = 0; i < k; i++) {
        const xi = x[r * k + i]!;
        sx[i]! += xi;
        for (let j = 0; j < k; j++) xtx[i * k + j]! += xi * x[r * k + j]!;
        for (let j = 0; j < m; j++) xty[i * m + j]! += xi * y[r * m + j]!;
      }
      for (let j = 0; j < m; j++) sy[j]! += y[r * m + j]!;
    }
    this.addProducts(rows, xtx, xty, sx, sy);
  }
}

export interface LinearFit {
  /** Row-major K x M. */
  weights: Float64Array;
  /** M. */
  bias: Float64Array;
}

/**
 * Solves the centred normal equations (Cxx + λI) W = Cxy, b = ȳ − x̄ W. `ridge` is relative to
 * the mean diagonal of Cxx, so it means the same for any input scale; a column with no variance
 * (a channel that is always zero) gets weight 0 instead of making the system singular.
 */
export function solveRidge(acc: MomentAccumulator, options: { ridge?: number; intercept?: boolean; prior?: ArrayLike<number> } = {}): LinearFit {
  const { inputs: k, outputs: m, rows } = acc;
  const { ridge = 1e-4, intercept = true, prior } = options;
  if (prior && prior.length !== k * m) throw new Error(`The prior has ${prior.length} weights; the fit has ${k}x${m}.`);
  if (rows === 0) throw new Error('No rows to fit.');
  const meanX = new Float64Array(k);
  const meanY = new Float64Array(m);
  if (intercept) {
    for (let i = 0; i < k; i++) meanX[i] = acc.sumX[i]! / rows;
    for (let j = 0; j < m; j++) meanY[j] = acc.sumY[j]! / rows;
  }
  const a = new Float64Array(k * k);
  for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) a[i * k + j] = acc.xtx[i * k + j]! / rows - meanX[i]! * meanX[j]!;
  const b = new Float64Array(k * m);
  for (let i = 0; i < k; i++) for (let j = 0; j < m; j++) b[i * m + j] = acc.xty[i * m + j]! / rows - meanX[i]! * meanY[j]!;
  let trace = 0;
  for (let i = 0; i < k; i++) trace += a[i * k + i]!;
  // Moments summed in float32 lose a little to cancellation when centred, which can leave a
  // nearly constant column (padding, a dead channel) with a pivot just below zero: then the
  // ridge grows tenfold and the factorisation is tried again.
  let lambda = Math.max((ridge * trace) / k, 1e-12);
  let factor: Float64Array | undefined;
  let used = lambda;
  for (let attempt = 0; attempt < 6 && !factor; attempt++, lambda *= 10) {
    const tried = Float64Array.from(a);
    for (let i = 0; i < k; i++) tried[i * k + i]! += lambda;
    try {
      choleskyInPlace(tried, k);
      factor = tried;
      used = lambda;
    } catch (error) {
      if (attempt === 5) throw error;
    }
  }
  // With a prior W0 the ridge pulls towards it, not towards zero: (A + λI) W = B + λ W0.
  if (prior) for (let i = 0; i < k * m; i++) b[i]! += used * prior[i]!;
  const weights = choleskySolve(factor!, k, b, m);
  const bias = new Float64Array(m);
  for (let j = 0; j < m; j++) {
    let s = meanY[j]!;
    for (let i = 0; i < k; i++) s -= meanX[i]! * weights[i * m + j]!;
    bias[j] = s;
  }
  return { weights, bias };
}

/** Lower Cholesky factor of a symmetric positive-definite K x K matrix, written over its lower triangle. */
export function choleskyInPlace(a: Float64Array, k: number): void {
  for (let j = 0; j < k; j++) {
    const rowJ = j * k;
    let d = a[rowJ + j]!;
    for (let p = 0; p < j; p++) d -= a[rowJ + p]! * a[rowJ + p]!;
    if (!(d > 0)) throw new Error(`The least-squares system is not positive definite at column ${j} (pivot ${d}).`);
    const l = Math.sqrt(d);
    a[rowJ + j] = l;
    const inverse = 1 / l;
    for (let i = j + 1; i < k; i++) {
      const rowI = i * k;
      // Four partial sums: the dot product's additions no longer wait on each other (about 1.6x faster).
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      let p = 0;
      for (; p + 3 < j; p += 4) {
        s0 += a[rowI + p]! * a[rowJ + p]!;
        s1 += a[rowI + p + 1]! * a[rowJ + p + 1]!;
        s2 += a[rowI + p + 2]! * a[rowJ + p + 2]!;
        s3 += a[rowI + p + 3]! * a[rowJ + p + 3]!;
      }
      for (; p < j; p++) s0 += a[rowI + p]! * a[rowJ + p]!;
      a[rowI + j] = (a[rowI + j]! - (s0 + s1 + s2 + s3)) * inverse;
    }
  }
}

/** Solves L Lᵀ X = B for X (K x M, row-major) given the factor from choleskyInPlace. */
export function choleskySolve(l: Float64Array, k: number, b: Float64Array, m: number): Float64Array {
  const x = Float64Array.from(b);
  // Forward: L Z = B.
  for (let i = 0; i < k; i++) {
    for (let p = 0; p < i; p++) {
      const lip = l[i * k + p]!;
      if (lip === 0) continue;
      for (let j = 0; j < m; j++) x[i * m + j]! -= lip * x[p * m + j]!;
    }
    const d = l[i * k + i]!;
    for (let j = 0; j < m; j++) x[i * m + j]! /= d;
  }
  // Backward: Lᵀ X = Z.
  for (let i = k - 1; i >= 0; i--) {
    for (let p = i + 1; p < k; p++) {
      const lpi = l[p * k + i]!;
      if (lpi === 0) continue;
      for (let j = 0; j < m; j++) x[i * m + j]! -= lpi * x[p * m + j]!;
    }
    const d = l[i * k + i]!;
    for (let j = 0; j < m; j++) x[i * m + j]! /= d;
  }
  return x;
}
