import type { BackendReport } from '../../worker/backend-types';
import { restartWorker } from '../controller';
import { useLabStore } from '../store';

function adapterName(report: BackendReport): string | null {
  const a = report.adapter;
  if (!a) return null;
  return [a.vendor, a.architecture, a.description, a.device].filter(Boolean).join(' · ') || 'unnamed adapter';
}

/** Which backend the worker runs on, on which adapter, and why a better one was not used. */
export function BackendPanel() {
  const backend = useLabStore((s) => s.backend);
  const deviceLost = useLabStore((s) => s.deviceLost);
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
          </p>
          <ul className="attempts">
            {backend.value.attempts.map((a) => (
              <li key={a.backend} className={a.ok ? 'ok' : 'failed'} data-testid={`attempt-${a.backend}`}>
                <strong>{a.backend}</strong> {a.ok ? 'in use' : 'not used'}
                {a.reason && <span className="reason">: {a.reason}</span>}
              </li>
            ))}
          </ul>
        </>
      )}
      {deviceLost && (
        <div role="alert" data-testid="device-lost">
          <p className="error">{deviceLost}</p>
          <button type="button" data-testid="restart-worker" onClick={() => void restartWorker()}>
            Restart the compute worker
          </button>
        </div>
      )}
    </section>
  );
}
