import { firstRunPath, useRunSlice } from '../first-run';

/** Models → data → methods → train, each a link to its panel, the next one highlighted. */
export function FirstRunPath() {
  const steps = firstRunPath(useRunSlice());
  return (
    <nav className="first-run" aria-label="Steps of a run" data-testid="first-run">
      <ol>
        {steps.map((step, i) => (
          <li key={step.id} className={`path-step ${step.state}`} data-testid={`path-${step.id}`} data-state={step.state} aria-current={step.state === 'next' ? 'step' : undefined}>
            <a href={`#${step.id}`}>
              <span className="path-n">{step.state === 'done' ? '✓' : i + 1}</span>
              <span className="path-label">{step.label}</span>
              <span className="path-detail">{step.detail}</span>
            </a>
          </li>
        ))}
      </ol>
    </nav>
  );
}
