/**
 * softplus(x) inside an elementwise program (graph/elementwise-program.ts) from x and σ = sigmoid(x),
 * without exp or log kernels: tfjs-wasm's Softplus is a scalar loop (about 21 ns a value), its
 * Sigmoid is vectorised, and a program has only + − × ÷ min max. With lo = min(σ, 1 − σ) and
 * hi = max(σ, 1 − σ) (σ(−|x|) and σ(|x|)), u = lo / hi = e^−|x| and
 *   softplus(x) = max(x, 0) + log1p(u),  log1p(u) = 2·atanh(s),  s = u / (2 + u) ∈ [0, 1/3],
 * the atanh series to s¹¹ (the next term is below 2·10⁻⁸ of the sum). So softplus is accurate to
 * float32 rounding where x < 0 and to within about 10⁻⁷ absolute where x > 0 (1 − σ rounds).
 */
import { ew, type Expr } from '../graph/elementwise-program';

const { constant, ref, add, sub, mul, div, min, max } = ew;

/**
 * The lets that compute softplus(x), to open a program's lets with (they are refs 0..4), and
 * refs to lo, hi (σ(1 − σ) = lo·hi) and softplus for what follows.
 */
export function softplusFromSigmoid(x: Expr, sigma: Expr): { lets: Expr[]; lo: Expr; hi: Expr; softplus: Expr } {
  const [lo, hi, s, s2, softplus] = [0, 1, 2, 3, 4].map(ref) as [Expr, Expr, Expr, Expr, Expr];
  // 1 + s²/3 + s⁴/5 + … + s¹⁰/11, by Horner's rule in s².
  const atanhSeries = [1 / 3, 1 / 5, 1 / 7, 1 / 9, 1 / 11].reduceRight<Expr>((inner, c) => add(constant(c), mul(s2, inner)), constant(0));
  const log1p = mul(mul(constant(2), s), add(constant(1), mul(s2, atanhSeries)));
  const u = div(lo, hi);
  return {
    lets: [min(sigma, sub(constant(1), sigma)), max(sigma, sub(constant(1), sigma)), div(u, add(constant(2), u)), mul(s, s), add(max(x, constant(0)), log1p)],
    lo,
    hi,
    softplus,
  };
}
