import { BACKEND_ORDER, type BackendName, type BackendReport } from '../../worker/backend-types';
import { switchBackend } from '../controller';
import { isRunActive, useLabStore } from '../store';

function adapterName(report: BackendReport): string | null {
  const a = report.adapter;
  if (!a) return null;
  return [a.vendor, a.architecture, a.description, a.device].filter(Boolean).join(' · ') || 'unnamed adapter';
}

/** Which backend the worker runs on, on which adapter, and why a better one was not used. */
export function BackendPanel() {
  const backend = useLabStore((s) => s.backend);
  const request = useLabStore((s) => s.backendRequest);
  const deviceLost = useLabStore((s) => s.deviceLost !== null);
  const running = useLabStore((s) => isRunActive(s.training.status));
  const chosen: BackendName | 'auto' = request?.source === 'choice' ? (request.label as BackendName) : 'auto';
  return (
    <section className="card" aria-labelledby="backend-title" data-testid="backend-panel">
      <h2 id="backend-title">Compute backend</h2>
      {backend.status === 'loading' && <p className="muted">Starting the worker, {backend.detail}…</p>}
      {backend.status === 'error' && <p className="error" role="alert">{backend.error}</p>}
      {backend.status === 'ready' && (
        <>
          <p className="backend-line">
            <span className="badge" data-testid="backend-name">{backend.value.backend}</span>
            {backend.value.adapter && (
              <span className="adapter" data-testid="adapter-name">{adapterName(backend.value)}</span>
            )}
            {backend.value.adapter && (
              <span className={backend.value.adapter.isFallback ? 'tag warn' : 'tag ok'} data-testid="adapter-kind">
                {backend.value.adapter.isFallback ? 'software (fallback) adapter' : 'hardware adapter'}
              </span>
            )}
            {backend.value.wasmThreads && (
              <span className={backend.value.wasmThreads.count > 1 ? 'tag ok' : 'tag warn'} data-testid="wasm-threads" title={backend.value.wasmThreads.note}>
                {backend.value.wasmThreads.count} {backend.value.wasmThreads.count === 1 ? 'thread' : 'threads'}
              </span>
            )}
          </p>
          {backend.value.wasmThreads?.note && <p className="small muted">{backend.value.wasmThreads.note}</p>}
          <ul className="attempts">
            {backend.value.attempts.map((a) => (
              <li key={a.backend} className={a.ok ? 'ok' : a.software ? 'passed' : 'failed'} data-testid={`attempt-${a.backend}`}>
                <strong>{a.backend}</strong> {a.ok ? 'in use' : a.software ? 'passed over' : 'not used'}
                {a.reason && <span className="reason">: {a.reason}</span>}
              </li>
            ))}
          </ul>
        </>
      )}
      {deviceLost && <p className="error small">The GPU device was lost: see the notice at the top of the page.</p>}
      {request && backend.status !== 'loading' && (
        <div className="backend-choice">
          <p className="small" data-testid="backend-source">
            {request.source === 'url' && (
              <>
                Forced by <code>{request.label}</code> in the address; choosing here replaces it.
              </>
            )}
            {request.source === 'choice' && <>Chosen here ({request.label}), kept in this browser.</>}
            {request.source === 'auto' && <>Chosen automatically: the fastest backend that works, a software GPU last.</>}
          </p>
          <label className="inline small">
            Backend
            <select
              data-testid="backend-choice"
              value={request.source === 'url' ? '' : chosen}
              disabled={running}
              onChange={(e) => void switchBackend(e.target.value as BackendName | 'auto')}
            >
              {request.source === 'url' && <option value="">{request.label}</option>}
              <option value="auto">automatic</option>
              {BACKEND_ORDER.map((b) => (
                <option key={b} value={b}>
                  {b}
                </option>
              ))}
            </select>
          </label>
          <p className="muted small">
            {running
              ? 'Stop the training to switch.'
              : 'Switching restarts the compute worker: models, data and the checkpoint come back; weights trained since the last checkpoint do not.'}
          </p>
        </div>
      )}
    </section>
  );
}
