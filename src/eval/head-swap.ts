/**
 * Where a student loses to its teacher: the student's GFL head outputs with one half taken from
 * the teacher, the class logits (read at the student's classes) or the box distributions, scored
 * like any detector. If the teacher's classes with the student's boxes score near the teacher,
 * the student's boxes are sound and its classification is what distillation must repair, and the
 * other way round. Both models must read the same input (strides, reg_max, preprocessing).
 */
import * as tf from '@tensorflow/tfjs';
import type { GraphRunner } from '../detect/runner';
import type { ModelManifest } from '../models/manifest';
import { teacherChannelsForStudent } from '../train/session';
import type { TrainableGraph } from '../graph/executor';

/** The half of the head taken from the teacher. */
export type HeadHalf = 'classes' | 'boxes';

interface Model {
  manifest: ModelManifest;
  graph: TrainableGraph;
}

/** Whether both models read the same input tensor (the swaps feed one to both). */
const sameInput = (a: ModelManifest, b: ModelManifest) => JSON.stringify(a.preprocess) === JSON.stringify(b.preprocess) && a.input.layout === b.input.layout;

/** Why this pair cannot swap head halves; undefined when it can. */
export function headSwapProblem(student: ModelManifest, teacher: ModelManifest): string | undefined {
  if (student.head.type !== 'gfl' || teacher.head.type !== 'gfl') return 'both heads must be GFL heads';
  if (student.head.strides.join() !== teacher.head.strides.join()) return `the strides differ (${teacher.head.strides.join(',')} and ${student.head.strides.join(',')})`;
  if (student.head.regMax !== teacher.head.regMax) return `reg_max differs (${teacher.head.regMax} and ${student.head.regMax})`;
  if (!sameInput(student, teacher)) return 'the two models preprocess their input differently';
  const channels = teacherChannelsForStudent(teacher, student);
  const missing = student.classes.filter((_, i) => channels[i] === undefined);
  if (missing.length) return `the teacher has no class ${missing.join(', ')}`;
  return undefined;
}

/**
 * A runner of the student whose head outputs (NHWC or NCHW as the student's manifest says) carry
 * the teacher's `fromTeacher` half. Non-head outputs are the student's own.
 */
export function headSwapRunner(student: Model, teacher: Model, fromTeacher: HeadHalf): GraphRunner {
  const problem = headSwapProblem(student.manifest, teacher.manifest);
  if (problem) throw new Error(`Cannot swap head halves: ${problem}.`);
  const k = student.manifest.classes.length;
  const kT = teacher.manifest.classes.length;
  const classChannels = teacherChannelsForStudent(teacher.manifest, student.manifest) as number[];
  const heads = student.manifest.head.outputs;
  const toNhwc = (t: tf.Tensor, layout: 'NHWC' | 'NCHW') => (layout === 'NCHW' ? tf.transpose(t, [0, 2, 3, 1]) : t);
  return {
    run: (input, outputs) => {
      const own = student.graph.execute(input, outputs);
      const fromT = teacher.graph.execute(input, teacher.manifest.head.outputs);
      try {
        return tf.tidy(() =>
          outputs.map((name, i) => {
            const level = heads.indexOf(name);
            if (level < 0) return tf.clone(own[i]!);
            const s = toNhwc(own[i]!, student.manifest.head.outputLayout);
            const t = toNhwc(fromT[level]!, teacher.manifest.head.outputLayout);
            const cls = fromTeacher === 'classes' ? tf.gather(t.slice([0, 0, 0, 0], [-1, -1, -1, kT]), classChannels, 3) : s.slice([0, 0, 0, 0], [-1, -1, -1, k]);
            const box = fromTeacher === 'boxes' ? t.slice([0, 0, 0, kT], [-1, -1, -1, -1]) : s.slice([0, 0, 0, k], [-1, -1, -1, -1]);
            const joined = tf.concat([cls, box], 3);
            return student.manifest.head.outputLayout === 'NCHW' ? tf.transpose(joined, [0, 3, 1, 2]) : joined;
          }),
        );
      } finally {
        tf.dispose([...own, ...fromT]);
      }
    },
  };
}

/** Why the teacher's neck outputs cannot be fed to the student's head; undefined when they can. */
export function neckSwapProblem(student: ModelManifest, teacher: ModelManifest): string | undefined {
  const s = student.taps?.neck ?? [];
  const t = teacher.taps?.neck ?? [];
  if (!s.length || !t.length) return `${s.length ? 'the teacher' : 'the model'}'s manifest names no neck outputs (taps.neck)`;
  if (s.length !== t.length) return `the neck has ${t.length} levels in the teacher and ${s.length} in the model`;
  if ((student.taps?.layout ?? 'NCHW') !== (teacher.taps?.layout ?? 'NCHW')) return 'the two manifests read their taps in different layouts';
  if (!sameInput(student, teacher)) return 'the two models preprocess their input differently';
  return undefined;
}

/**
 * A runner of the student fed, at its neck outputs (level by level), with the teacher's: what the
 * student's own head makes of the teacher's features. Near the teacher's mAP, the student's head
 * is sound and what it lost lies in its backbone and neck.
 */
export function neckSwapRunner(student: Model, teacher: Model): GraphRunner {
  const problem = neckSwapProblem(student.manifest, teacher.manifest);
  if (problem) throw new Error(`Cannot feed the teacher's neck to the model: ${problem}.`);
  const studentNeck = student.manifest.taps!.neck!;
  const teacherNeck = teacher.manifest.taps!.neck!;
  const inputName = student.graph.inputs[0]!.name;
  return {
    run: (input, outputs) => {
      const neck = teacher.graph.execute(input, teacherNeck);
      try {
        const feeds: Record<string, tf.Tensor> = { [inputName]: input };
        studentNeck.forEach((n, i) => (feeds[n] = neck[i]!));
        return student.graph.execute(feeds, outputs);
      } catch (error) {
        throw new Error(`The teacher's neck outputs (${neck.map((t) => `[${t.shape.join(',')}]`).join(', ')}) do not fit the model's head: ${(error as Error).message}`, { cause: error });
      } finally {
        tf.dispose(neck);
      }
    },
  };
}

/** The parts of "where the student loses to the teacher", each scored alike on the same images. */
export type SwapPart = 'teacher' | 'student' | 'teacherClasses' | 'teacherBoxes' | 'teacherNeck';

/** Each part's score (null: not measured, or no objects), and why a swap could not be made. */
export interface SwapScores {
  mapAll: Record<SwapPart, number | null>;
  problems: Partial<Record<'head' | 'neck', string>>;
}

/**
 * Scores the teacher, the student, and the student with either head half or its neck input
 * taken from the teacher, through `score` (an evaluation of a model, run by `runner` when given);
 * a swap the pair cannot make is skipped with its reason. The command line and the lab share it.
 */
export async function scoreSwaps<M extends Model>(student: M, teacher: M, score: (part: SwapPart, model: M, runner?: GraphRunner) => Promise<number | null>): Promise<SwapScores> {
  const problems: SwapScores['problems'] = {};
  const head = headSwapProblem(student.manifest, teacher.manifest);
  const neck = neckSwapProblem(student.manifest, teacher.manifest);
  if (head) problems.head = head;
  if (neck) problems.neck = neck;
  return {
    mapAll: {
      teacher: await score('teacher', teacher),
      student: await score('student', student),
      teacherClasses: head ? null : await score('teacherClasses', student, headSwapRunner(student, teacher, 'classes')),
      teacherBoxes: head ? null : await score('teacherBoxes', student, headSwapRunner(student, teacher, 'boxes')),
      teacherNeck: neck ? null : await score('teacherNeck', student, neckSwapRunner(student, teacher)),
    },
    problems,
  };
}
