import { restartWorker } from '../controller';
import { useLabStore } from '../store';

/** A lost GPU device stops everything until the worker restarts: said at the top of the page, with the way out. */
export function DeviceLostBanner() {
  const deviceLost = useLabStore((s) => s.deviceLost);
  if (!deviceLost) return null;
  return (
    <div className="device-lost" role="alert" data-testid="device-lost">
      <p className="error">{deviceLost}</p>
      <button type="button" data-testid="restart-worker" onClick={() => void restartWorker()}>
        Restart the compute worker
      </button>
    </div>
  );
}
