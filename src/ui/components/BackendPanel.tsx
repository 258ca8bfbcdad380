import type { BackendReport } from '../../worker/backend-types';
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
    <section className="card" aria-labelledby="backend-title">
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
      {deviceLost && <p className="error" role="alert">{deviceLost}</p>}
    </section>
  );
}
