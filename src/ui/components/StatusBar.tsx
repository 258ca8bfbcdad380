import { stepValueText } from '../live-stats';
import { useLabStore } from '../store';

/** Always in view: the backend and adapter the worker runs on, and where the run is. */
export function StatusBar() {
  const backend = useLabStore((s) => s.backend);
  const t = useLabStore((s) => s.training);
  const lost = useLabStore((s) => s.deviceLost);
  const a = backend.status === 'ready' ? backend.value.adapter : undefined;
  return (
    <div className="status-bar" data-testid="status-bar">
      {backend.status === 'ready' ? (
        <>
          <span className="badge">{backend.value.backend}</span>
          {a && (
            <span className="adapter small" title={a.description}>
              {[a.vendor, a.architecture].filter(Boolean).join(' ')}
              {a.isFallback ? ' (software)' : ''}
            </span>
          )}
        </>
      ) : (
        <span className="muted small">{backend.status === 'error' ? 'no backend' : 'starting…'}</span>
      )}
      {lost && <span className="tag warn">GPU device lost</span>}
      <span className="run small mono" data-testid="status-run">
        {t.status === 'idle' ? 'idle' : `${t.status} · step ${t.step}/${t.totalSteps || '–'} · loss ${stepValueText(t.loss, t)}`}
      </span>
    </div>
  );
}
