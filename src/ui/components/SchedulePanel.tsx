import type { LabExperiment } from '../../worker/lab';
import { DEFAULT_TEACHER_CACHE_MIB } from '../../train/teacher-cache-policy';
import { withAnnotatedPerBatchInBatch } from '../../train/epoch';
import { updateConfig } from '../controller';
import { isRunActive, useLabStore } from '../store';
import { formatDuration } from '../format';
import { NumberField } from './NumberField';
import { usePlan } from './usePlan';

type Schedule = LabExperiment['schedule'];
const SIZES = [64, 96, 128, 160, 192, 224, 256, 320, 384, 416, 480, 512, 640];

function setSchedule<K extends keyof Schedule>(key: K, value: Schedule[K]) {
  updateConfig((c) => withAnnotatedPerBatchInBatch({ ...c, schedule: { ...c.schedule, [key]: value } }));
}

/** Optimiser, schedule, input size, checkpoints and the image limits. */
export function SchedulePanel() {
  const config = useLabStore((s) => s.config);
  const disabled = useLabStore((s) => isRunActive(s.training.status));
  const planned = usePlan();
  if (!config) return null;
  const s = config.schedule;
  // An optional field left unset reads 0, its "off" value (steps: 0 trains by epochs).
  const num = (key: keyof Schedule, label: string, opts: { integer?: boolean; min?: number; title?: string; testId?: string } = {}) => (
    <NumberField label={label} value={(s[key] as number | undefined) ?? 0} disabled={disabled} testId={`schedule-${key}`} onChange={(v) => setSchedule(key, v as never)} {...opts} />
  );
  return (
    <section className="card" aria-labelledby="schedule-title" data-testid="schedule-panel">
      <div className="panel-head">
        <h2 id="schedule-title">Schedule</h2>
        <span className="small schedule-plan" data-testid="schedule-plan">
          {planned ? (
            <>
              {planned.plan.mixed
                ? `${planned.plan.mixed.photos} photos ÷ ${s.batchSize - planned.plan.mixed.annotatedPerBatch} per batch (beside ${planned.plan.mixed.annotatedPerBatch} annotated)`
                : `${planned.plan.images} images ÷ batch ${s.batchSize}`}{' '}
              = {planned.plan.perEpoch} step{planned.plan.perEpoch === 1 ? '' : 's'} per epoch{planned.plan.fixedSteps ? ';' : ` × ${s.epochs} =`}{' '}
              <strong data-testid="schedule-steps">{planned.plan.totalSteps} steps</strong>
              {planned.plan.fixedSteps && ` (about ${(planned.plan.totalSteps / planned.plan.perEpoch).toFixed(1)} epochs; the steps field sets it, 0 trains by epochs)`}
              {planned.estimate && (
                <>
                  {' · '}
                  <strong data-testid="schedule-time">about {formatDuration(planned.estimate.seconds)}</strong>{' '}
                  <span className="muted">
                    {planned.estimate.basis === 'measured' ? '(measured on this page)' : '(rough, from the models’ MACs; measured once it runs)'}
                  </span>
                </>
              )}
            </>
          ) : (
            <span className="muted">steps and time once the data is loaded</span>
          )}
        </span>
      </div>
      <div className="grid-fields">
        <label className="field">
          <span>input size</span>
          <select data-testid="schedule-inputSize" value={s.inputSize} disabled={disabled} onChange={(e) => setSchedule('inputSize', Number(e.target.value))}>
            {SIZES.map((n) => (
              <option key={n} value={n}>
                {n} × {n}
              </option>
            ))}
          </select>
        </label>
        {num('epochs', 'epochs', { integer: true, min: 1 })}
        {num('steps', 'steps (0: by epochs)', { integer: true, min: 0, testId: 'schedule-steps-field', title: 'train exactly this many steps, passing over the images as often as needed; 0 trains for the epochs' })}
        {num('batchSize', 'batch size', { integer: true, min: 1 })}
        <label className="field">
          <span>optimizer</span>
          <select value={s.optimizer} disabled={disabled} onChange={(e) => setSchedule('optimizer', e.target.value as Schedule['optimizer'])}>
            <option value="adam">AdamW</option>
            <option value="sgd">SGD</option>
          </select>
        </label>
        {num('lr', 'learning rate', { min: 0 })}
        {s.optimizer === 'sgd' && num('momentum', 'momentum', { min: 0 })}
        {num('weightDecay', 'weight decay', { min: 0 })}
        {num('warmupSteps', 'warm-up steps', { integer: true, min: 0 })}
        {num('clipNorm', 'clip grad norm', { min: 0, title: '0 disables clipping' })}
        {num('flipProbability', 'flip probability', { min: 0 })}
        <NumberField
          label="random crop, smallest side"
          value={s.cropScale ?? 1}
          min={0.1}
          disabled={disabled}
          testId="schedule-crop-scale"
          title="each training image is cut to a window whose sides are between this fraction and all of the image's, at a random place, before the letterbox; objects whose centre falls outside are left out (1: no crop)"
          onChange={(v) => setSchedule('cropScale', v > 0 && v < 1 ? v : undefined)}
        />
        {num('seed', 'seed', { integer: true })}
        <NumberField
          label="weight average (EMA)"
          value={s.ema ?? 0}
          min={0}
          disabled={disabled}
          testId="schedule-ema"
          title="decay of a moving average of the student's weights, e.g. 0.99: the average is what is evaluated and exported, training goes on from the raw weights (0: off). The decay ramps up as (1 + step) / (10 + step), so in runs under about 900 steps every decay above 0.97 averages alike"
          onChange={(v) => setSchedule('ema', v < 1 ? v : 0.999)}
        />
        <NumberField
          label="checkpoint every"
          value={config.checkpointEvery}
          integer
          min={0}
          disabled={disabled}
          testId="checkpoint-every"
          title="steps; a checkpoint is also saved when stopped"
          onChange={(v) => updateConfig((c) => ({ ...c, checkpointEvery: v }))}
        />
        <NumberField
          label="gradient shares every"
          value={config.gradientNormsEvery ?? 0}
          integer
          min={0}
          disabled={disabled}
          testId="gradient-norms-every"
          title="steps; each loss part's share of the gradient is measured at the first step and then every this many (each measurement costs about one step per part; 0: never)"
          onChange={(v) => updateConfig((c) => ({ ...c, gradientNormsEvery: v }))}
        />
        <NumberField
          label="teacher cache (MiB)"
          value={config.lab?.teacherCacheMiB ?? DEFAULT_TEACHER_CACHE_MIB}
          integer
          min={0}
          disabled={disabled}
          testId="teacher-cache-mib"
          title="memory for the teacher's outputs of images seen before (same flip): their later steps skip the teacher's forward, with the same result; 0: off; not used with random crops"
          onChange={(v) => updateConfig((c) => ({ ...c, lab: { ...c.lab, teacherCacheMiB: v } }))}
        />
        <NumberField
          label="train images (0 = all)"
          value={config.lab?.maxTrainImages ?? 0}
          integer
          min={0}
          disabled={disabled}
          testId="max-train-images"
          onChange={(v) => updateConfig((c) => ({ ...c, lab: { ...c.lab, maxTrainImages: v } }))}
        />
        <NumberField
          label="eval images (0 = all)"
          value={config.lab?.maxEvalImages ?? 0}
          integer
          min={0}
          disabled={disabled}
          testId="max-eval-images"
          onChange={(v) => updateConfig((c) => ({ ...c, lab: { ...c.lab, maxEvalImages: v } }))}
        />
      </div>
    </section>
  );
}
