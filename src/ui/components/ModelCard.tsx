import { useRef, useState, type DragEvent } from 'react';
import type { ModelRole } from '../../worker/lab';
import { dropModel, loadDefaultModel } from '../controller';
import { formatBytes, formatCount } from '../format';
import { isRunActive, useLabStore } from '../store';
import { ProvenanceSection } from './ProvenanceSection';

const TITLES: Record<ModelRole, string> = { teacher: '1 · Teacher', student: '1 · Student' };

/** One model: its facts, and a drop zone for a person's own tfjs model (model.json + weights + manifest, or a .zip). */
export function ModelCard({ role }: { role: ModelRole }) {
  const model = useLabStore((s) => s.models[role]);
  const notice = useLabStore((s) => s.modelNotice[role]);
  const locked = useLabStore((s) => isRunActive(s.training.status));
  const input = useRef<HTMLInputElement>(null);
  const [over, setOver] = useState(false);
  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    setOver(false);
    if (!locked) void dropModel(role, Array.from(e.dataTransfer.files));
  };
  return (
    <section
      className={`card model-card${over ? ' over' : ''}`}
      id={role === 'teacher' ? 'models' : undefined}
      aria-labelledby={`${role}-title`}
      data-testid={`${role}-card`}
      onDragOver={(e) => {
        e.preventDefault();
        setOver(true);
      }}
      onDragLeave={() => setOver(false)}
      onDrop={onDrop}
    >
      <h2 id={`${role}-title`}>
        {TITLES[role]} <span className="role-note">{role === 'teacher' ? 'constant' : 'trained'}</span>
      </h2>
      {model.status === 'loading' && <p className="muted">{model.detail}…</p>}
      {model.status === 'error' && <p className="error" role="alert">{model.error}</p>}
      {model.status === 'ready' && (
        <>
          <p className="model-name" data-testid={`${role}-name`}>{model.value.name}</p>
          <dl className="facts">
            <dt>Parameters</dt>
            <dd data-testid={`${role}-params`}>{formatCount(model.value.parameters)}</dd>
            <dt>MACs</dt>
            <dd data-testid={`${role}-macs`} title={model.value.macsFrom === 'manifest' ? 'from the manifest profile' : 'counted from the graph'}>
              {formatCount(model.value.macs)} <span className="muted">per image at {model.value.inputSize}²</span>
            </dd>
            <dt>Input</dt>
            <dd data-testid={`${role}-input`}>
              {model.value.inputSize} × {model.value.inputSize}, {model.value.layout}
            </dd>
            <dt>Classes</dt>
            <dd>{model.value.classes.length}</dd>
            <dt>Head</dt>
            <dd>
              GFL, strides {model.value.strides.join('/')}, reg_max {model.value.regMax}
            </dd>
            {model.value.weightBytes > 0 && (
              <>
                <dt>Weights</dt>
                <dd>{formatBytes(model.value.weightBytes)}</dd>
              </>
            )}
          </dl>
          <p className="muted small origin" title={model.value.description}>
            {model.value.isDefault ? 'default' : 'dropped'}: {model.value.origin}
            {model.value.derivedFrom && `; derived from ${model.value.derivedFrom}`}
          </p>
          {model.value.card && <ProvenanceSection card={model.value.card} />}
        </>
      )}
      {notice && (
        <p className="error small" role="alert" data-testid={`${role}-notice`}>
          {notice}
        </p>
      )}
      <div className="row">
        <button type="button" className="secondary" disabled={locked} onClick={() => input.current?.click()}>
          Load files…
        </button>
        {model.status === 'ready' && !model.value.isDefault && (
          <button type="button" className="link" disabled={locked} onClick={() => void loadDefaultModel(role)}>
            use the default
          </button>
        )}
        <span className="muted small">or drop model.json + .bin + manifest, or a .zip</span>
      </div>
      <input
        ref={input}
        type="file"
        multiple
        hidden
        accept=".json,.bin,.zip"
        data-testid={`${role}-files`}
        onChange={(e) => {
          void dropModel(role, Array.from(e.target.files ?? []));
          e.target.value = '';
        }}
      />
    </section>
  );
}

/** Why the loaded pair cannot run the chosen methods, in checkPair's words. */
export function PairProblems() {
  const problems = useLabStore((s) => s.pairProblems);
  if (problems.length === 0) return null;
  return (
    <section className="card warn-card" role="alert" data-testid="pair-problems">
      <h2>This teacher and student cannot work together</h2>
      <ul>
        {problems.map((p) => (
          <li key={p}>{p}</li>
        ))}
      </ul>
    </section>
  );
}
