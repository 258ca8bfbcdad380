/**
 * Each loss part's share of the gradient: its gradient norm on the student over the sum of all
 * parts' norms. Shares compare how hard each term pulls, whatever its loss value; a share near 0
 * means the term teaches nothing at this weight, one near 1 that it drowns the others.
 */
export interface GradientShare {
  part: string;
  norm: number;
  share: number;
}

/** Parts in the given order, with their shares (0 each when every norm is 0). */
export function gradientShares(norms: Readonly<Record<string, number>>): GradientShare[] {
  const entries = Object.entries(norms).filter(([, n]) => Number.isFinite(n));
  const total = entries.reduce((sum, [, n]) => sum + n, 0);
  return entries.map(([part, norm]) => ({ part, norm, share: total > 0 ? norm / total : 0 }));
}

/** "gradient shares at step 0: detection 61% (0.42) · kd 12% (0.083) · hints 27% (0.19)" */
export function gradientShareLine(step: number, norms: Readonly<Record<string, number>>): string {
  const parts = gradientShares(norms).map((s) => `${s.part} ${(100 * s.share).toFixed(0)}% (${s.norm.toPrecision(2)})`);
  return `gradient shares at step ${step}: ${parts.join(' · ')}`;
}
