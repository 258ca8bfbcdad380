/**
 * What starting a new run would throw away: a new run starts from the student as loaded, clears
 * the curves, and its first checkpoint replaces the saved one. The page asks before doing that.
 */
import type { CheckpointInfo } from '../worker/lab';
import type { TrainingState } from './store';

export function whatANewRunReplaces(t: Pick<TrainingState, 'history' | 'step' | 'totalSteps' | 'status'>, saved: CheckpointInfo | null): string[] {
  const out: string[] = [];
  const trained = t.history.length > 0 ? t.history[t.history.length - 1]!.step : 0;
  if (trained > 0 && t.status !== 'idle') out.push(`the student's weights after ${trained} step${trained === 1 ? '' : 's'} (a new run starts from the student as loaded; export them first to keep them)`);
  if (t.history.length > 0) out.push(`the loss curves of steps ${t.history[0]!.step}–${trained}`);
  if (saved) out.push(`the checkpoint of step ${saved.step} of ${saved.totalSteps} saved in this browser (replaced by the new run's first checkpoint)`);
  return out;
}
