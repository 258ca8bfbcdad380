import { gradientShares } from '../../train/gradient-shares';
import { useLabStore } from '../store';

/** Categorical colours, one per loss part in the order the parts first appear. */
const PART_COLOURS = ['#63b3ed', '#f6ad55', '#68d391', '#fc8181', '#b794f4', '#f6e05e', '#4fd1c5', '#fbb6ce', '#a0aec0'];

/**
 * Each loss part's share of the gradient the student receives (its gradient norm over the sum of
 * all parts'), at the first step and every few steps after: a part near 0% teaches nothing at its
 * weight, one near 100% drowns the others. One bar per measurement, the latest on top.
 */
export function GradientShares() {
  const measured = useLabStore((s) => s.training.gradientNorms);
  const every = useLabStore((s) => s.config?.gradientNormsEvery ?? 0);
  if (measured.length === 0) {
    return (
      <p className="muted small" data-testid="gradient-shares-empty">
        {every > 0 ? `Each loss part's share of the gradient is measured at the first step and every ${every} steps.` : 'Gradient shares are not measured (set “measure gradient shares every” above 0).'}
      </p>
    );
  }
  const parts = [...new Set(measured.flatMap((m) => Object.keys(m.norms)))];
  const colour = (part: string) => PART_COLOURS[parts.indexOf(part) % PART_COLOURS.length]!;
  const rows = measured.slice(-6).reverse();
  const latest = gradientShares(rows[0]!.norms);
  return (
    <figure className="gradient-shares" data-testid="gradient-shares">
      <figcaption>
        Share of the gradient on the student, by loss part <span className="muted">(norm of each part’s gradient / sum; measured before the step’s update)</span>
      </figcaption>
      {rows.map((m) => (
        <div className="share-row" key={m.step} data-testid="gradient-share-row" data-step={m.step}>
          <span className="mono share-step">step {m.step}</span>
          <div className="share-bar" role="img" aria-label={gradientShares(m.norms).map((p) => `${p.part} ${(100 * p.share).toFixed(0)}%`).join(', ')}>
            {gradientShares(m.norms).map((p) => (
              <span key={p.part} data-part={p.part} data-share={p.share.toFixed(4)} style={{ width: `${(100 * p.share).toFixed(2)}%`, background: colour(p.part) }} title={`${p.part}: ${(100 * p.share).toFixed(1)}% (gradient norm ${p.norm.toPrecision(3)})`} />
            ))}
          </div>
        </div>
      ))}
      <ul className="share-legend">
        {latest.map((p) => (
          <li key={p.part}>
            <span className="swatch" style={{ background: colour(p.part) }} />
            {p.part} <span className="mono">{(100 * p.share).toFixed(0)}%</span>
            {p.share < 0.05 && <span className="warn-text"> (negligible at this weight)</span>}
            {p.share > 0.9 && latest.length > 1 && <span className="warn-text"> (drowns the others)</span>}
          </li>
        ))}
      </ul>
    </figure>
  );
}
