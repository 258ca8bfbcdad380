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

/** Axis text is 11 px monospace: about 0.62 em per character. */
export const AXIS_FONT_PX = 11;
const textWidth = (text: string) => text.length * AXIS_FONT_PX * 0.62;

/**
 * Every how many bars an x label fits: labels (anchor indices, bins) are centred on their slot and
 * need their width plus a gap, so none overlaps its neighbour.
 */
export function labelStep(labels: readonly string[], slot: number): number {
  const widest = Math.max(1, ...labels.map((l) => textWidth(l)));
  return Math.max(1, Math.ceil((widest + 8) / Math.max(slot, 1e-6)));
}

/** Teacher vs student over the same positions: paired bars, each one's pick marked. */
export function Distribution({ title, data, bins, labels, argmax, width = 260, testId }: DistributionProps) {
  let max = 0;
  for (const v of data) if (Number.isFinite(v) && v > max) max = v;
  max = max || 1;
  const h = 104;
  const pad = { l: Math.max(30, textWidth(formatValue(max)) + 6), r: 6, t: 8, b: 18 };
  const iw = width - pad.l - pad.r;
  const ih = h - pad.t - pad.b;
  const slot = iw / Math.max(1, bins);
  const bar = Math.max(1, slot / 2 - 0.5);
  const y = (v: number) => pad.t + ih - (v / max) * ih;
  const every = labelStep(labels, slot);
  return (
    <figure className="distribution" data-testid={testId ?? 'distribution'}>
      <figcaption>{title}</figcaption>
      <svg width={width} height={h} role="img" aria-label={`${title}: teacher vs student over ${bins} positions`}>
        <line x1={pad.l} x2={width - pad.r} y1={pad.t + ih} y2={pad.t + ih} stroke="var(--line)" />
        <text x={pad.l - 4} y={pad.t + 9} textAnchor="end" className="axis">{formatValue(max)}</text>
        <text x={pad.l - 4} y={pad.t + ih} textAnchor="end" className="axis">0</text>
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
                <text x={Math.min(width - textWidth(labels[b] ?? '') / 2 - 1, Math.max(textWidth(labels[b] ?? '') / 2 + 1, x + slot / 2))} y={h - 4} textAnchor="middle" className="axis">
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
  let max = 0;
  for (const v of [...teacher, ...student]) if (Number.isFinite(v) && v > max) max = v;
  max = max || 1;
  const h = 100;
  const pad = { l: Math.max(30, textWidth(formatValue(max)) + 6), r: 6, t: 8, b: 18 };
  const n = teacher.length;
  const iw = width - pad.l - pad.r;
  const ih = h - pad.t - pad.b;
  const x = (i: number) => pad.l + (i / n) * iw;
  const y = (v: number) => pad.t + ih - (v / max) * ih;
  const line = Array.from(student, (v, i) => `${x(i + 0.5).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
  return (
    <figure className="distribution" data-testid="channel-bars">
      <figcaption>{title}</figcaption>
      <svg width={width} height={h} role="img" aria-label={`${title}: ${n} channels`}>
        <line x1={pad.l} x2={width - pad.r} y1={pad.t + ih} y2={pad.t + ih} stroke="var(--line)" />
        <text x={pad.l - 4} y={pad.t + 9} textAnchor="end" className="axis">{formatValue(max)}</text>
        <text x={pad.l - 4} y={pad.t + ih} textAnchor="end" className="axis">0</text>
        {Array.from(teacher, (v, i) => (
          <rect key={i} x={x(i)} y={y(v)} width={Math.max(0.6, iw / n - 0.4)} height={pad.t + ih - y(v)} fill={TEACHER_COLOUR} opacity={0.75} />
        ))}
        <polyline points={line} fill="none" stroke={STUDENT_COLOUR} strokeWidth={1.2} />
        <text x={width - pad.r} y={h - 4} textAnchor="end" className="axis">channel {n - 1}</text>
        <text x={pad.l} y={h - 4} className="axis">0</text>
      </svg>
    </figure>
  );
}
