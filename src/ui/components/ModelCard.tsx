import { formatBytes, formatCount } from '../format';
import { useLabStore } from '../store';

export function TeacherCard() {
  const teacher = useLabStore((s) => s.teacher);
  return (
    <section className="card" aria-labelledby="teacher-title">
      <h2 id="teacher-title">Teacher</h2>
      {teacher.status === 'loading' && <p className="muted">{teacher.detail}…</p>}
      {teacher.status === 'error' && <p className="error" role="alert">{teacher.error}</p>}
      {teacher.status === 'ready' && (
        <>
          <p className="model-name" data-testid="teacher-name">{teacher.value.name}</p>
          <dl className="facts">
            <dt>Parameters</dt>
            <dd data-testid="teacher-params">{formatCount(teacher.value.parameterCount)}</dd>
            <dt>Weights</dt>
            <dd>{formatBytes(teacher.value.weightBytes)}</dd>
            <dt>Input</dt>
            <dd>{teacher.value.inputSize} × {teacher.value.inputSize}</dd>
            <dt>Classes</dt>
            <dd>{teacher.value.classCount}</dd>
            <dt>Head</dt>
            <dd>GFL, strides {teacher.value.strides.join('/')}, reg_max {teacher.value.regMax}</dd>
          </dl>
          {teacher.value.source && <p className="muted small">{teacher.value.source}</p>}
        </>
      )}
    </section>
  );
}
