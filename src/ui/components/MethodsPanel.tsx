import { useState } from 'react';
import type { MethodRow } from '../../worker/lab';
import { setMethodEnabled, setMethodParam, setMethodScale, updateConfig } from '../controller';
import { isRunActive, useLabStore } from '../store';
import { NumberField } from './NumberField';

/** Choices of string-valued parameters, as the methods define them. */
const CHOICES: Record<string, string[]> = {
  scoreSpace: ['probability', 'logit'],
  vlrWeighting: ['iou', 'uniform'],
  normalize: ['weight-sum', 'sum'],
  mode: ['bce', 'kl'],
  reduction: ['mean', 'sum'],
  maxOver: ['all-levels', 'per-level'],
};
/** Parameters the lab sets itself (class mapping from the pair, the inspected object). */
const AUTOMATIC = new Set(['teacherClassIndex', 'mapImage', 'mapGt']);

function ParamInput({ method, name, value, fallback, disabled }: { method: string; name: string; value: unknown; fallback: unknown; disabled: boolean }) {
  const current = value ?? fallback;
  if (typeof fallback === 'number') {
    return <NumberField label={name} value={current as number} disabled={disabled} testId={`param-${method}-${name}`} onChange={(v) => setMethodParam(method, name, v)} />;
  }
  if (typeof fallback === 'boolean') {
    return (
      <label className="field check">
        <input type="checkbox" checked={current as boolean} disabled={disabled} onChange={(e) => setMethodParam(method, name, e.target.checked)} />
        <span>{name}</span>
      </label>
    );
  }
  if (typeof fallback === 'string') {
    return (
      <label className="field">
        <span>{name}</span>
        <select value={current as string} disabled={disabled} onChange={(e) => setMethodParam(method, name, e.target.value)}>
          {(CHOICES[name] ?? [fallback]).map((c) => (
            <option key={c}>{c}</option>
          ))}
        </select>
      </label>
    );
  }
  return null;
}

/** "what it does" on demand: the explanation, the paper and (when chosen) the parameters. */
function DetailsToggle({ id, open, onToggle }: { id: string; open: boolean; onToggle: () => void }) {
  return (
    <button type="button" className="link details-toggle" aria-expanded={open} aria-controls={`method-details-${id}`} data-testid={`method-details-${id}`} onClick={onToggle}>
      {open ? 'less' : 'details'}
    </button>
  );
}

function MethodItem({ m, disabled }: { m: MethodRow; disabled: boolean }) {
  const chosen = useLabStore((s) => s.config?.methods.find((c) => c.id === m.id));
  const params = Object.entries(m.defaults).filter(([k]) => !AUTOMATIC.has(k));
  const [open, setOpen] = useState(false);
  const changed = chosen && ((chosen.scale ?? 1) !== 1 || Object.keys(chosen.params ?? {}).length > 0);
  return (
    <li className={`method${chosen ? ' on' : ''}`} data-testid={`method-${m.id}`}>
      <div className="method-line">
        <label className="method-head" title={m.summary}>
          <input type="checkbox" checked={!!chosen} disabled={disabled} data-testid={`method-toggle-${m.id}`} onChange={(e) => setMethodEnabled(m.id, e.target.checked)} />
          <span className="method-title">{m.title}</span>
        </label>
        {chosen && <span className="muted small">{changed ? 'own settings' : 'paper defaults'}</span>}
        <DetailsToggle id={m.id} open={open} onToggle={() => setOpen(!open)} />
      </div>
      {open && (
        <div id={`method-details-${m.id}`}>
          <p className="summary">{m.summary}</p>
          <p className="citation">{m.citation}</p>
          {chosen ? (
            <div className="params">
              <NumberField label="scale" value={chosen.scale ?? 1} min={0} disabled={disabled} testId={`scale-${m.id}`} title="Extra multiplier on the method's weighted loss" onChange={(v) => setMethodScale(m.id, v)} />
              {params.map(([k, v]) => (
                <ParamInput key={k} method={m.id} name={k} value={(chosen.params as Record<string, unknown> | undefined)?.[k]} fallback={v} disabled={disabled} />
              ))}
            </div>
          ) : (
            params.length > 0 && <p className="muted small">Choose it to set its {params.length} parameters (paper defaults to start).</p>
          )}
        </div>
      )}
    </li>
  );
}

/** Plain fine-tuning (the detection loss) and every registered method, with the paper's defaults. */
export function MethodsPanel() {
  const methods = useLabStore((s) => s.methods);
  const weight = useLabStore((s) => s.config?.detectionWeight ?? 1);
  const disabled = useLabStore((s) => isRunActive(s.training.status));
  const count = useLabStore((s) => s.config?.methods.length ?? 0);
  const [detailsOpen, setDetailsOpen] = useState(false);
  return (
    <section className="card" aria-labelledby="methods-title" data-testid="methods-panel" id="methods">
      <h2 id="methods-title">3 · Methods</h2>
      <p className="muted small methods-hint">Tick any combination; “details” explains each method, names its paper and sets its parameters (paper defaults to start).</p>
      <ul className="methods">
        <li className={`method${weight > 0 ? ' on' : ''}`} data-testid="method-detection">
          <div className="method-line">
            <label className="method-head" title="The student’s own GFL loss on the ground truth">
              <input
                type="checkbox"
                checked={weight > 0}
                disabled={disabled}
                data-testid="method-toggle-detection"
                onChange={(e) => updateConfig((c) => ({ ...c, detectionWeight: e.target.checked ? 1 : 0 }))}
              />
              <span className="method-title">Plain fine-tuning (detection loss)</span>
            </label>
            {weight > 0 && weight !== 1 && <span className="muted small">weight {weight}</span>}
            <DetailsToggle id="detection" open={detailsOpen} onToggle={() => setDetailsOpen(!detailsOpen)} />
          </div>
          {detailsOpen && (
            <div id="method-details-detection">
              <p className="summary">The student’s own GFL loss on the ground truth: QFL + DFL + GIoU. Alone, it is the baseline every method is compared with.</p>
              <p className="citation">Li et al. Generalized Focal Loss. NeurIPS 2020.</p>
              {weight > 0 && (
                <div className="params">
                  <NumberField label="weight" value={weight} min={0} disabled={disabled} testId="detection-weight" onChange={(v) => updateConfig((c) => ({ ...c, detectionWeight: v }))} />
                </div>
              )}
            </div>
          )}
        </li>
        {methods.map((m) => (
          <MethodItem key={m.id} m={m} disabled={disabled} />
        ))}
      </ul>
      {count === 0 && weight === 0 && <p className="error small">Choose a method or keep the detection loss: there is nothing to train.</p>}
    </section>
  );
}
