import { describe, expect, it } from 'vitest';
import type { LossDiagnosis } from '../worker/lab';
import { diagnosisSummary } from './diagnosis';

const base: LossDiagnosis = { split: 'trainval', inputSize: 320, images: 30, step: 0, problems: {}, mapAll: { teacher: 0.646, student: 0.417, teacherClasses: 0.592, teacherBoxes: 0.421, teacherNeck: 0.624 } };

describe('diagnosisSummary', () => {
  it('names the half that recovers more of the gap, and where the neck swap puts the rest (the derived student\'s figures)', () => {
    expect(diagnosisSummary(base)).toBe(
      "The teacher's class scores recover 17.5 of the 22.9 points, its boxes 0.4: classification is where the student loses most; fed the teacher's neck, the student's own head comes within 2.2 of the teacher: what is lost lies in the backbone and neck.",
    );
  });

  it('says when the boxes matter more, when the head itself loses, and when nothing could be swapped', () => {
    const boxes = diagnosisSummary({ ...base, mapAll: { ...base.mapAll, teacherClasses: 0.45, teacherBoxes: 0.55, teacherNeck: 0.5 } });
    expect(boxes).toBe("The teacher's class scores recover 3.3 of the 22.9 points, its boxes 13.3: localisation is where the student loses most; fed the teacher's neck, the student's head still misses 14.6: its head loses part of it.");
    expect(diagnosisSummary({ ...base, mapAll: { ...base.mapAll, teacherClasses: null, teacherBoxes: null, teacherNeck: null } })).toBe('The pair cannot swap head halves or necks (below).');
    expect(diagnosisSummary({ ...base, mapAll: { ...base.mapAll, student: 0.7 } })).toBe('The student scores at least the teacher here (70.0 against 64.6).');
  });
});
