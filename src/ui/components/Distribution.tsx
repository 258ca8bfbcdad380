import { formatValue } from '../colors';
import { STUDENT_COLOUR, TEACHER_COLOUR } from '../colors';

export interface DistributionProps {
  title: string;
  /** [2,B]: the teacher's row, then the student's. */
  data: Float32Array;
  bins: number;
  /** What each bar stands for (anchor index or bin). */
  labels: string[];
  argmax: { teacher: number; student: number };
  width?: number;
  testId?: string;
}

/** Teacher vs student over the same positions: paired bars, each one's pick marked. */
export function Distribution({ title, data, bins, labels, argmax, width = 260, testId }: DistributionProps) {
  const h = 96;
  const pad = { l: 28, r: 4, t: 6, b: 16 };
  const iw = width - pad.l - pad.r;
  const ih = h - pad.t - pad.b;
  let max = 0;
  for (const v of data) if (Number.isFinite(v) && v > max) max = v;
  max = max || 1;
  const slot = iw / Math.max(1, bins);
  const bar = Math.max(1, slot / 2 - 0.5);
  const y = (v: number) => pad.t + ih - (v / max) * ih;
  const every = Math.ceil(bins / 12);
  return (
    <figure className="distribution" data-testid={testId ?? 'distribution'}>
      <figcaption>{title}</figcaption>
      <svg width={width} height={h} role="img" aria-label={`${title}: teacher vs student over ${bins} positions`}>
        <line x1={pad.l} x2={width - pad.r} y1={pad.t + ih} y2={pad.t + ih} stroke="var(--line)" />
        <text x={pad.l - 3} y={pad.t + 8} textAnchor="end" className="axis">{formatValue(max)}</text>
        <text x={pad.l - 3} y={pad.t + ih} textAnchor="end" className="axis">0</text>
        {Array.from({ length: bins }, (_, b) => {
          const t = data[b] ?? 0;
          const s = data[bins + b] ?? 0;
          const x = pad.l + b * slot;
          return (
            <g key={b}>
              <rect x={x + 0.5} y={y(t)} width={bar} height={pad.t + ih - y(t)} fill={TEACHER_COLOUR} opacity={b === argmax.teacher ? 1 : 0.7}>
                <title>{`${labels[b]}: teacher ${formatValue(t)}, student ${formatValue(s)}`}</title>
              </rect>
              <rect x={x + 0.5 + bar} y={y(s)} width={bar} height={pad.t + ih - y(s)} fill={STUDENT_COLOUR} opacity={b === argmax.student ? 1 : 0.7}>
                <title>{`${labels[b]}: teacher ${formatValue(t)}, student ${formatValue(s)}`}</title>
              </rect>
              {b % every === 0 && (
                <text x={x + slot / 2} y={h - 3} textAnchor="middle" className="axis">
                  {labels[b]}
                </text>
              )}
            </g>
          );
        })}
      </svg>
      <p className="small muted">
        pick: <span style={{ color: TEACHER_COLOUR }}>T {labels[argmax.teacher]}</span> · <span style={{ color: STUDENT_COLOUR }}>S {labels[argmax.student]}</span>
      </p>
    </figure>
  );
}

/** FGD's channel attention of one level: teacher bars, student line, over the channels. */
export function ChannelBars({ title, teacher, student, width = 340 }: { title: string; teacher: Float32Array; student: Float32Array; width?: number }) {
  const h = 90;
  const pad = { l: 28, r: 4, t: 6, b: 14 };
  const n = teacher.length;
  const iw = width - pad.l - pad.r;
  const ih = h - pad.t - pad.b;
  let max = 0;
  for (const v of [...teacher, ...student]) if (Number.isFinite(v) && v > max) max = v;
  max = max || 1;
  const x = (i: number) => pad.l + (i / n) * iw;
  const y = (v: number) => pad.t + ih - (v / max) * ih;
  const line = Array.from(student, (v, i) => `${x(i + 0.5).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
  return (
    <figure className="distribution" data-testid="channel-bars">
      <figcaption>{title}</figcaption>
      <svg width={width} height={h} role="img" aria-label={`${title}: ${n} channels`}>
        <line x1={pad.l} x2={width - pad.r} y1={pad.t + ih} y2={pad.t + ih} stroke="var(--line)" />
        <text x={pad.l - 3} y={pad.t + 8} textAnchor="end" className="axis">{formatValue(max)}</text>
        <text x={pad.l - 3} y={pad.t + ih} textAnchor="end" className="axis">0</text>
        {Array.from(teacher, (v, i) => (
          <rect key={i} x={x(i)} y={y(v)} width={Math.max(0.6, iw / n - 0.4)} height={pad.t + ih - y(v)} fill={TEACHER_COLOUR} opacity={0.75} />
        ))}
        <polyline points={line} fill="none" stroke={STUDENT_COLOUR} strokeWidth={1.2} />
        <text x={width - pad.r} y={h - 2} textAnchor="end" className="axis">channel {n - 1}</text>
        <text x={pad.l} y={h - 2} className="axis">0</text>
      </svg>
    </figure>
  );
}
