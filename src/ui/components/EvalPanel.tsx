import type { DiagnosisPart, EvalSummary, EvalTarget, LossDiagnosis } from '../../worker/lab';
import { diagnose, evaluate } from '../controller';
import { diagnosisSummary } from '../diagnosis';
import { formatMs } from '../format';
import { isBusyTraining, useLabStore } from '../store';

const TARGETS: { id: EvalTarget; title: string }[] = [
  { id: 'teacher', title: 'teacher' },
  { id: 'before', title: 'student before' },
  { id: 'now', title: 'student now' },
];

const pct = (v: number | null | undefined) => (v === null || v === undefined ? '–' : (v * 100).toFixed(1));

const DIAGNOSIS_ROWS: { id: DiagnosisPart; title: string }[] = [
  { id: 'teacher', title: 'teacher' },
  { id: 'student', title: 'student' },
  { id: 'teacherClasses', title: "student with the teacher's class scores in its head" },
  { id: 'teacherBoxes', title: "student with the teacher's boxes in its head" },
  { id: 'teacherNeck', title: "student's head fed the teacher's neck outputs" },
];

const PROGRESS_TITLES: Record<EvalTarget | DiagnosisPart, string> = {
  teacher: 'teacher',
  before: 'student before',
  now: 'student now',
  student: 'student',
  teacherClasses: "student, teacher's classes",
  teacherBoxes: "student, teacher's boxes",
  teacherNeck: "student's head on the teacher's neck",
};

/** Where the student loses to the teacher: the swaps' mAP, one row each. */
function Diagnosis({ d }: { d: LossDiagnosis }) {
  return (
    <div data-testid="diagnosis">
      <h3>
        Where the student loses to the teacher <span className="muted small">split {d.split}, {d.images} images, input {d.inputSize}², student at step {d.step}</span>
      </h3>
      <table className="metrics" data-testid="diagnosis-table">
        <thead>
          <tr>
            <th>VOC mAP (all-point), %</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {DIAGNOSIS_ROWS.map((row) => (
            <tr key={row.id} data-part={row.id}>
              <td>{row.title}</td>
              <td className="mono" data-testid={`diagnosis-${row.id}`}>
                {pct(d.mapAll[row.id])}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <p className="small" data-testid="diagnosis-summary">
        {diagnosisSummary(d)}
      </p>
      {Object.entries(d.problems).map(([part, why]) => (
        <p key={part} className="muted small">
          {part === 'head' ? 'Head halves not swapped' : 'Neck not swapped'}: {why}.
        </p>
      ))}
    </div>
  );
}

/** VOC mAP (11-point and all-point) and COCO AP of the teacher, the student before training and now, per class too. */
export function EvalPanel() {
  const ev = useLabStore((s) => s.evaluation);
  const busy = useLabStore((s) => isBusyTraining(s.training.status));
  const ready = useLabStore((s) => s.data.status === 'ready' && s.models.student.status === 'ready' && s.models.teacher.status === 'ready');
  const split = useLabStore((s) => (s.data.status === 'ready' ? s.data.value.val.split : ''));
  const inputSize = useLabStore((s) => s.config?.schedule.inputSize ?? 0);
  const reports = TARGETS.map((t) => [t, ev.reports[t.id]] as const).filter((x): x is readonly [(typeof TARGETS)[number], EvalSummary] => !!x[1]);
  const rows: { label: string; get: (r: EvalSummary) => number | null }[] = [
    { label: 'VOC mAP (11-point)', get: (r) => r.map11 },
    { label: 'VOC mAP (all-point)', get: (r) => r.mapAll },
    { label: 'COCO AP [.5:.95]', get: (r) => r.coco.ap },
    { label: 'COCO AP50', get: (r) => r.coco.ap50 },
    { label: 'COCO AP75', get: (r) => r.coco.ap75 },
  ];
  const classes = new Map<string, number>();
  for (const [, r] of reports) for (const c of r.perClass) if (c.numGt > 0) classes.set(c.className, c.numGt);
  const progress = ev.progress;
  return (
    <section className="card" aria-labelledby="eval-title" data-testid="eval-panel">
      <div className="panel-head">
        <h2 id="eval-title">Evaluation</h2>
        <span className="muted small">
          split {split || '–'}, input {inputSize}², scores ≥ 0.05, ≤ 100 boxes per image, difficult objects ignored
        </span>
      </div>
      <div className="row">
        <button type="button" data-testid="evaluate" disabled={!ready || busy || ev.running} onClick={() => void evaluate(['teacher', 'before', 'now'])}>
          Evaluate all three
        </button>
        <button type="button" className="secondary" disabled={!ready || busy || ev.running} onClick={() => void evaluate(['now'])}>
          Student now only
        </button>
        <button
          type="button"
          className="secondary"
          data-testid="diagnose"
          disabled={!ready || busy || ev.running}
          title="Scores the student with the teacher's class scores, then its boxes, in its head, and its head on the teacher's neck outputs: where the lost points lie"
          onClick={() => void diagnose()}
        >
          Where the student loses
        </button>
        {busy && <span className="muted small">pause the training to evaluate</span>}
      </div>
      {ev.running && (
        <div className="eval-progress" data-testid="eval-progress">
          <div className="progress">
            <div className="bar" style={{ width: progress ? `${((progress.done / progress.total) * 100).toFixed(0)}%` : '0%' }} />
          </div>
          <span className="muted small">{progress ? `${PROGRESS_TITLES[progress.target]}: ${progress.done} / ${progress.total} images` : 'starting…'}</span>
        </div>
      )}
      {ev.error && (
        <p className="error" role="alert">
          {ev.error}
        </p>
      )}
      {ev.diagnosis && <Diagnosis d={ev.diagnosis} />}
      {reports.length > 0 && (
        <>
          <table className="metrics" data-testid="eval-table">
            <thead>
              <tr>
                <th>%</th>
                {reports.map(([t]) => (
                  <th key={t.id}>{t.title}</th>
                ))}
              </tr>
            </thead>
            <tbody>
              {rows.map((row) => (
                <tr key={row.label}>
                  <td>{row.label}</td>
                  {reports.map(([t, r]) => (
                    <td key={t.id} className="mono" data-testid={`metric-${t.id}`}>
                      {pct(row.get(r))}
                    </td>
                  ))}
                </tr>
              ))}
              <tr className="muted">
                <td>images · objects · detections · time</td>
                {reports.map(([t, r]) => (
                  <td key={t.id} className="small">
                    {r.counts.images} · {r.counts.groundTruth} · {r.counts.detections} · {formatMs(r.elapsedMs)}
                  </td>
                ))}
              </tr>
            </tbody>
          </table>
          <table className="metrics per-class" data-testid="eval-per-class">
            <thead>
              <tr>
                <th>class (objects)</th>
                {reports.map(([t]) => (
                  <th key={t.id} colSpan={2}>
                    {t.title}
                    <br />
                    <span className="muted small">AP · COCO AP</span>
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {[...classes].map(([name, n]) => (
                <tr key={name}>
                  <td>
                    {name} <span className="muted">({n})</span>
                  </td>
                  {reports.map(([t, r]) => {
                    const c = r.perClass.find((x) => x.className === name);
                    return [
                      <td key={`${t.id}a`} className="mono">
                        {pct(c?.apAll)}
                      </td>,
                      <td key={`${t.id}c`} className="mono muted">
                        {pct(c?.cocoAp)}
                      </td>,
                    ];
                  })}
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}
