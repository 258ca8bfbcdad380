import { REPAIR_RECIPE } from '../../train/repair-recipe';
import { useState } from 'react';
import { deriveStudent } from '../controller';
import { formatCount } from '../format';
import { isRunActive, useLabStore } from '../store';
import { NumberField } from './NumberField';
import { MEASURED_VARIANTS } from '../../derive/variants';
import type { DerivationChoice } from '../../worker/lab';

const pct = (a: number, b: number) => `${((100 * a) / b).toFixed(0)}%`;

/**
 * "Derive a student": a smaller student made from the teacher on the person's own photos (no
 * labels used): channels pruned to a MAC budget, each changed layer refit to the teacher.
 * Offered once photos are loaded; until then the panel says why.
 */
export function DerivePanel() {
  const teacher = useLabStore((s) => s.models.teacher);
  const student = useLabStore((s) => s.models.student);
  const data = useLabStore((s) => s.data);
  const derivation = useLabStore((s) => s.derivation);
  const locked = useLabStore((s) => isRunActive(s.training.status));
  const [macsPercent, setMacsPercent] = useState(60);
  const [images, setImages] = useState(64);
  const [size, setSize] = useState(0);
  const [candidates, setCandidates] = useState(1);
  const schedule = useLabStore((s) => s.config?.schedule);
  const maxTrainImages = useLabStore((s) => s.config?.lab?.maxTrainImages);
  const plain = useLabStore((s) => s.photos);
  // Calibration uses the plain photos when loaded, else the training split's images.
  const photos = plain.status === 'ready' ? plain.value.count : data.status === 'ready' ? data.value.train.images.length : 0;
  const teacherSize = teacher.status === 'ready' ? teacher.value.inputSize : 416;
  const why =
    teacher.status !== 'ready'
      ? 'Load a teacher first.'
      : photos === 0
        ? 'Load your photos (a VOC folder or archive, or photos without annotations) first: the student is derived from them, labels unused.'
        : locked
          ? 'Stop the training first.'
          : macsPercent <= 0 || macsPercent > 100
            ? 'The MAC target must be between 1% and 100%.'
            : images < 8
              ? 'Use at least 8 photos.'
              : candidates > 1 && data.status !== 'ready'
                ? 'Choosing among candidates scores them on your annotated training split: load a VOC folder or archive too.'
                : candidates > 1 && images * candidates > photos
                  ? `${candidates} candidates of ${images} photos need ${images * candidates} photos; ${photos} are loaded.`
                  : null;
  const calibrated = student.status === 'ready' ? student.value.calibration : undefined;
  const progress = derivation.progress;
  return (
    <section className="card" aria-labelledby="derive-title" data-testid="derive-panel">
      <h2 id="derive-title">Derive a student</h2>
      <p className="muted small">
        A smaller student cut from the teacher: convolution channels pruned to a MAC budget, every changed layer refit by least squares
        to reproduce the teacher on your photos (no labels needed), so it starts close to the teacher instead of from scratch.
      </p>
      {student.status === 'ready' && !calibrated && (
        <p className="warn-text small" data-testid="student-uncalibrated">
          The student now loaded was not derived from photos: it starts far from the teacher (near 0 mAP before training).
        </p>
      )}
      <div className="grid-fields">
        <NumberField label="MACs (% of teacher)" value={macsPercent} min={1} onChange={setMacsPercent} testId="derive-macs" disabled={derivation.running} experiment={false} />
        <NumberField label={`photos (of ${photos || '–'})`} value={images} min={8} integer onChange={setImages} testId="derive-images" disabled={derivation.running} experiment={false} />
        <NumberField
          label="calibration size"
          value={size || teacherSize}
          min={32}
          integer
          onChange={setSize}
          testId="derive-size"
          disabled={derivation.running}
          experiment={false}
          title="input side of the calibration photos; smaller is faster"
        />
        <NumberField
          label="candidates"
          value={candidates}
          min={1}
          integer
          onChange={setCandidates}
          testId="derive-candidates"
          disabled={derivation.running}
          experiment={false}
          title="derive this many students, each from its own photos, and keep the one that scores best on the annotated training split"
        />
      </div>
      {candidates === 1 && data.status === 'ready' && images >= 8 && Math.floor(photos / images) > 1 && (
        <p className="muted small" data-testid="derive-candidates-hint">
          Your {photos} photos allow up to {Math.floor(photos / images)} candidates of {images}. Which photos calibrate can move a student by 15 points of mAP.
          Measured with NanoDet-g on 30 VOC images, keeping the best of 5 candidates of 32 photos on the annotated training split scored 50.9 mAP on held-out
          images, against 41.7 for one set drawn at random. Candidates of 16 photos did worse than a random draw (26.0 against 31.1), and of 64 photos no better
          (42.3 against 42.1): choose among candidates of 32.
        </p>
      )}
      {candidates > 1 && (
        <p className="muted small" data-testid="derive-candidates-plan">
          {candidates} students, each calibrated on its own {images} photos, scored on the training split
          {data.status === 'ready' ? ` (${data.value.train.split}${maxTrainImages ? `, at most ${maxTrainImages} images` : ''})` : ''} at {schedule?.inputSize ?? teacherSize}²; the best is kept. The
          evaluation split stays unseen, so its score remains a fair one.
        </p>
      )}
      <div className="row">
        <button
          type="button"
          disabled={!!why || derivation.running}
          title={why ?? undefined}
          data-testid="derive-button"
          onClick={() =>
            void deriveStudent({
              macs: macsPercent / 100,
              images: candidates > 1 ? images : Math.min(images, photos),
              calibrationSize: size || undefined,
              candidates,
              chooseSize: schedule?.inputSize,
              chooseImages: maxTrainImages || undefined,
            })
          }
        >
          {derivation.running ? 'Deriving…' : 'Derive'}
        </button>
        {why && !derivation.running && <span className="muted small" data-testid="derive-why">{why}</span>}
      </div>
      {derivation.running && (
        <p className="muted small" data-testid="derive-progress">
          {progress ? `${progress.stage.replace(/\brefit$/, 'refitting layer').replace(/scoring on (\S+)$/, 'scoring on $1, image')} ${progress.done} of ${progress.total}` : 'reading the photos'}…
        </p>
      )}
      {derivation.error && (
        <p className="error small" role="alert" data-testid="derive-error">
          {derivation.error}
        </p>
      )}
      {derivation.summary && (
        <p className="small" data-testid="derive-result">
          Student: {formatCount(derivation.summary.student.parameters)} parameters ({pct(derivation.summary.student.parameters, derivation.summary.teacher.parameters)} of the teacher's),{' '}
          {formatCount(derivation.summary.student.macs)} MACs ({pct(derivation.summary.student.macs, derivation.summary.teacher.macs)}); {derivation.summary.prunedConvs} layers pruned,{' '}
          {derivation.summary.refitConvs} refit on {derivation.summary.images} photos at {derivation.summary.inputSize}² in {derivation.summary.seconds.toFixed(0)} s. Evaluate it below
          (student before).
        </p>
      )}
      {derivation.summary?.choice && <CandidateTable choice={derivation.summary.choice} />}
      {derivation.summary && (
        <p className="small" data-testid="derive-recipe">
          The experiment is now the repair recipe measured for a derived student: {REPAIR_RECIPE.methods.map((m) => ('scale' in m ? `${m.id} ×${m.scale}` : m.id)).join(' + ')} + the detection loss,{' '}
          {REPAIR_RECIPE.annotatedPerBatch} annotated images in every batch beside the photos, AdamW {REPAIR_RECIPE.schedule.lr.toExponential(0)} with a weight average ({REPAIR_RECIPE.schedule.ema}),{' '}
          {REPAIR_RECIPE.schedule.steps} steps (longer runs drift). Change any of it below. Measured on 30 annotated VOC photos in three folds, it kept the derived
          student's mAP on images it did not train on (50.9 before, 50.2 after, the folds' mean) where plain fine-tuning lost 9 points: evaluate the student before and after
          training, and keep the one that scores higher on your own held-out images (README, “The repair recipe, cross-validated”).
        </p>
      )}
      <details className="small" data-testid="derive-variants">
        <summary>Variants measured on NanoDet-g (mAP before training)</summary>
        <table className="compact">
          <thead>
            <tr>
              <th>student</th>
              <th>params</th>
              <th>MACs</th>
              <th>mAP</th>
            </tr>
          </thead>
          <tbody>
            {MEASURED_VARIANTS.map((v) => (
              <tr key={v.student}>
                <td>{v.student}</td>
                <td className="mono">{formatCount(v.parameters)}</td>
                <td className="mono">{(100 * v.macs).toFixed(0)}%</td>
                <td className="mono">{v.map.toFixed(1)}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <p className="muted">
          At 416², calibrated on the first 32 plain VOC photos, scored on 30 annotated VOC photos it never saw (README, “Deriving a student”). The default calibrated on four
          other sets of 32 photos scored 27.0 to 32.1 at 320², against 41.7 for the first set: on 30 images, which photos calibrate moves the score as much as most variants do.
          Choosing channels by what the refit can rebuild (command line, <code>--select refit</code>) scored 29.1 on average over the same five sets, against 32.0.
        </p>
      </details>
    </section>
  );
}

/** Each candidate's photos and scores on the training split, the kept one marked. */
function CandidateTable({ choice }: { choice: DerivationChoice }) {
  const kept = choice.candidates[choice.chosen]!;
  return (
    <div className="small" data-testid="derive-choice">
      <p>
        Kept candidate {choice.chosen + 1} of {choice.candidates.length} (photos {kept.photos[0] + 1}–{kept.photos[1]}): the best on {choice.split} ({choice.images} annotated images
        at {choice.inputSize}²). Its score there picked it, so it overstates; the evaluation split did not take part.
      </p>
      <table className="compact">
        <thead>
          <tr>
            <th>candidate</th>
            <th className="num">photos</th>
            <th className="num">mAP on {choice.split}</th>
            <th className="num">COCO AP</th>
          </tr>
        </thead>
        <tbody>
          {choice.candidates.map((c, i) => (
            <tr key={i} data-testid="derive-candidate" data-chosen={i === choice.chosen ? 'true' : 'false'} className={i === choice.chosen ? 'chosen' : undefined}>
              <td>
                {i + 1}
                {i === choice.chosen ? ' (kept)' : ''}
              </td>
              <td className="mono">
                {c.photos[0] + 1}–{c.photos[1]}
              </td>
              <td className="mono">{(100 * c.mapAll).toFixed(1)}</td>
              <td className="mono">{(100 * c.cocoAp).toFixed(1)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
