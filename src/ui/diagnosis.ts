/**
 * The sentence under "Where the student loses to the teacher": which part of the student the lost
 * points lie in, read from the head and neck swaps (src/eval/head-swap.ts).
 */
import type { LossDiagnosis } from '../worker/lab';

const pct = (v: number) => (v * 100).toFixed(1);

/** One sentence from the swaps: which part of the student the lost points lie in. */
export function diagnosisSummary(d: LossDiagnosis): string {
  const { teacher, student, teacherClasses, teacherBoxes, teacherNeck } = d.mapAll;
  if (teacher === null || student === null) return 'No objects of the model\'s classes in this split: nothing to compare.';
  const gap = teacher - student;
  if (gap <= 0) return `The student scores at least the teacher here (${pct(student)} against ${pct(teacher)}).`;
  const parts: string[] = [];
  if (teacherClasses !== null && teacherBoxes !== null) {
    const cls = teacherClasses - student;
    const box = teacherBoxes - student;
    parts.push(`the teacher's class scores recover ${pct(cls)} of the ${pct(gap)} points, its boxes ${pct(box)}: ${cls >= box ? 'classification' : 'localisation'} is where the student loses most`);
  }
  if (teacherNeck !== null) {
    parts.push(
      teacherNeck >= teacher - 0.25 * gap
        ? `fed the teacher's neck, the student's own head comes within ${pct(Math.max(0, teacher - teacherNeck))} of the teacher: what is lost lies in the backbone and neck`
        : `fed the teacher's neck, the student's head still misses ${pct(teacher - teacherNeck)}: its head loses part of it`,
    );
  }
  const sentence = parts.join('; ');
  return parts.length ? `${sentence[0]!.toUpperCase()}${sentence.slice(1)}.` : 'The pair cannot swap head halves or necks (below).';
}

