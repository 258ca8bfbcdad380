import { useState } from 'react';
import { discardCheckpoint, pauseTraining, resumeFromCheckpoint, resumeTraining, startTraining, stopTraining } from '../controller';
import { formatMs } from '../format';
import { formatValue } from '../colors';
import { cacheText, NO_VALUE, rateText, stepValueText, timeLeftText } from '../live-stats';
import { isRunActive, useLabStore } from '../store';
import { whatANewRunReplaces } from '../run-guard';
import { GradientShares } from './GradientShares';
import { LossCharts } from './LossCharts';
import { usePlan } from './usePlan';
import { trainBlockers, useRunSlice } from '../first-run';

const STATUS_TEXT: Record<string, string> = {
  idle: 'not started',
  starting: 'starting (building the session, compiling kernels)',
  running: 'training',
  pausing: 'pausing after this step',
  paused: 'paused',
  stopping: 'stopping after this step',
  finished: 'finished',
  stopped: 'stopped',
  error: 'stopped by an error',
};

/** Train / Pause / Resume / Stop, progress, speed, time left, the checkpoint, and the loss curves. */
export function TrainingPanel() {
  const t = useLabStore((s) => s.training);
  const saved = useLabStore((s) => s.savedCheckpoint);
  const persistent = useLabStore((s) => s.persistent);
  const planned = usePlan();
  const blockers = trainBlockers(useRunSlice(), planned?.plan.totalSteps);
  const ready = blockers.length === 0;
  const active = isRunActive(t.status);
  const fraction = t.totalSteps > 0 ? t.step / t.totalSteps : 0;
  const resumable = !!saved && saved.step < saved.totalSteps;
  const previous = useLabStore((s) => s.previousRun);
  // Train over a run that exists asks first, naming what the new run replaces.
  const [confirming, setConfirming] = useState(false);
  const replaced = whatANewRunReplaces(t, saved);
  const onTrain = () => {
    if (replaced.length > 0) setConfirming(true);
    else void startTraining();
  };
  return (
    <section className="card training" aria-labelledby="training-title" data-testid="training-panel" id="train">
      <div className="panel-head">
        <h2 id="training-title">4 · Train</h2>
        <span className={`status status-${t.status}`} data-testid="train-status">
          {STATUS_TEXT[t.status]}
        </span>
      </div>
      <div className="row controls">
        {!active && (
          <button type="button" disabled={!ready || confirming} data-testid="train" onClick={onTrain}>
            {replaced.length > 0 ? 'Train a new run' : 'Train'}
          </button>
        )}
        {!active && !ready && (
          <span className="warn-text small train-why" data-testid="train-why">
            {blockers.join(' ')}
          </span>
        )}
        {!active && resumable && (
          <button type="button" className={confirming ? '' : 'secondary'} disabled={!ready} data-testid="resume-checkpoint" onClick={() => { setConfirming(false); void resumeFromCheckpoint(); }}>
            Resume from step {saved.step}
          </button>
        )}
        {(t.status === 'running' || t.status === 'starting') && (
          <button type="button" className="secondary" data-testid="pause" disabled={t.status === 'starting'} onClick={pauseTraining}>
            Pause
          </button>
        )}
        {(t.status === 'paused' || t.status === 'pausing') && (
          <button type="button" data-testid="resume" onClick={resumeTraining}>
            Resume
          </button>
        )}
        {active && (
          <button type="button" className="danger" data-testid="stop" disabled={t.status === 'stopping'} onClick={stopTraining}>
            Stop
          </button>
        )}
        <span className="muted small">
          {active ? 'Stop saves a checkpoint with what was learnt.' : 'Train starts a new run from the student as loaded; Resume continues the checkpoint.'}
        </span>
      </div>
      {confirming && !active && (
        <div className="confirm" role="alertdialog" aria-labelledby="confirm-title" data-testid="train-confirm">
          <p id="confirm-title">
            <strong>Start a new run from the student as loaded?</strong> It replaces:
          </p>
          <ul>
            {replaced.map((r) => (
              <li key={r}>{r}</li>
            ))}
          </ul>
          <p className="muted small">The curves of the run it replaces stay on the charts, dashed, for comparison.{resumable ? ` To continue that run instead, resume from step ${saved.step}.` : ''}</p>
          <div className="row">
            <button type="button" className="danger" data-testid="train-confirm-new" onClick={() => { setConfirming(false); void startTraining(); }}>
              Start a new run
            </button>
            {resumable && (
              <button type="button" data-testid="train-confirm-resume" onClick={() => { setConfirming(false); void resumeFromCheckpoint(); }}>
                Resume from step {saved.step} instead
              </button>
            )}
            <button type="button" className="secondary" data-testid="train-confirm-cancel" onClick={() => setConfirming(false)}>
              Cancel
            </button>
          </div>
        </div>
      )}
      <div className="progress" role="progressbar" aria-valuemin={0} aria-valuemax={t.totalSteps} aria-valuenow={t.step}>
        <div className="bar" style={{ width: `${(fraction * 100).toFixed(1)}%` }} />
      </div>
      <dl className="stats">
        <div>
          <dt>step</dt>
          <dd data-testid="train-step">
            {t.step} / {t.totalSteps || '–'}
          </dd>
        </div>
        <div>
          <dt>epoch</dt>
          <dd>
            {t.totalSteps ? t.epoch + 1 : '–'} / {t.stepsPerEpoch ? Math.round(t.totalSteps / t.stepsPerEpoch) : '–'}
          </dd>
        </div>
        <div>
          <dt>loss</dt>
          <dd className="mono" data-testid="train-loss">{stepValueText(t.loss, t)}</dd>
        </div>
        <div>
          <dt>images/s</dt>
          <dd className="mono" data-testid="train-rate">{rateText(t.imagesPerSecond, t)}</dd>
        </div>
        <div>
          <dt>time/step</dt>
          <dd className="mono">{t.msPerStep && t.stepsSeen > 0 ? formatMs(t.msPerStep) : NO_VALUE}</dd>
        </div>
        <div>
          <dt>time left</dt>
          <dd className="mono" data-testid="train-eta">{timeLeftText(t.etaSeconds, t.msPerStep, t)}</dd>
        </div>
        <div>
          <dt>lr</dt>
          <dd className="mono">{t.lr ? formatValue(t.lr) : NO_VALUE}</dd>
        </div>
        <div>
          <dt>grad norm</dt>
          <dd className="mono" data-testid="train-grad-norm">{stepValueText(t.gradNorm, t)}</dd>
        </div>
        {t.teacherCache && (
          <div className="wide" title="The teacher's outputs of images seen before (same flip) are kept in memory: steps whose images are all kept skip the teacher's forward. The share is of the images read so far.">
            <dt>teacher cached</dt>
            <dd className="mono" data-testid="teacher-cache">
              {cacheText(t.teacherCache)}
            </dd>
          </div>
        )}
        {t.pseudoBoxes > 0 && (
          <div title="boxes of photos without annotations, taken from the teacher's detections">
            <dt>teacher boxes</dt>
            <dd className="mono" data-testid="pseudo-boxes">
              {t.pseudoBoxes}
            </dd>
          </div>
        )}
      </dl>
      {t.error && (
        <p className="error" role="alert" data-testid="train-error">
          {t.error}
        </p>
      )}
      {t.skipped.length > 0 && (
        <p className="warn-text small">
          {t.skipped.length} step(s) had a non-finite loss and updated nothing (last: step {t.skipped[t.skipped.length - 1]!.step}, {t.skipped[t.skipped.length - 1]!.terms.join(', ')}).
        </p>
      )}
      <p className="muted small checkpoint-line" data-testid="checkpoint-info">
        {saved ? (
          <>
            Checkpoint: step {saved.step} of {saved.totalSteps}, saved {new Date(saved.savedAt).toLocaleTimeString()} ({saved.teacher} → {saved.student}, {saved.data}{' '}
            {saved.config.data.trainSplit}){!active && (
              <>
                {' '}
                <button type="button" className="link" onClick={() => void discardCheckpoint()}>
                  discard
                </button>
              </>
            )}
          </>
        ) : (
          'No checkpoint yet.'
        )}
        {!persistent && ' This browser offers no IndexedDB: checkpoints will not survive a reload.'}
      </p>
      <LossCharts points={t.history} previous={previous} />
      <GradientShares />
    </section>
  );
}
