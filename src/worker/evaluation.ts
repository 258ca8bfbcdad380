/**
 * Evaluation of a model on a VOC split in the student's label space: VOC mAP (11-point and
 * all-point) and COCO AP, overall and per class (src/eval). The teacher may speak another label
 * space (COCO's 80 classes): its detections are mapped onto the student's classes through the
 * pair's class correspondence (teacherChannelsForStudent), and detections of classes the
 * student does not have are dropped, so the three reports (teacher, student before training,
 * student now) score the same objects. All models run at one input size.
 */
import type { AnnotatedObject, ImageLoader } from '../data/pipeline';
import { createGflDetector, EVAL_DETECT_OPTIONS, evaluateDetector, type DetectFn, type DetectorEvalReport } from '../eval/evaluate-detector';
import type { ModelManifest } from '../models/manifest';
import { teacherChannelsForStudent, type ModelHandle } from '../train/session';
import { runnerOf } from './models';
import type { GraphRunner } from '../detect/runner';

/** A report without its per-image detections (what the UI shows). */
export type EvalSummary = Omit<DetectorEvalReport, 'images'> & { inputSize: number; model: string };

export interface EvaluateOptions {
  inputSize: number;
  /** The label space the data was loaded in (the student's manifest). */
  student: ModelManifest;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
  /** Runs the model in place of its own graph (a head or neck swapped with the teacher's: src/eval/head-swap.ts). */
  runner?: GraphRunner;
}

/** Teacher class channel → student class index, for the classes the student has. */
export function teacherToStudentClasses(teacher: ModelManifest, student: ModelManifest): Map<number, number> {
  const channels = teacherChannelsForStudent(teacher, student);
  const map = new Map<number, number>();
  channels.forEach((c, k) => {
    if (c !== undefined) map.set(c, k);
  });
  return map;
}

/** Wraps a detector so its classes are the student's (unmatched classes dropped). */
const sameClasses = (model: ModelManifest, student: ModelManifest) => model === student || model.classes.join('\n') === student.classes.join('\n');

export function inStudentClasses(detect: DetectFn, model: ModelManifest, student: ModelManifest): DetectFn {
  if (sameClasses(model, student)) return detect;
  const map = teacherToStudentClasses(model, student);
  return async (image, id) => {
    const out = [];
    for (const d of await detect(image, id)) {
      const k = map.get(d.classIndex);
      if (k !== undefined) out.push({ ...d, classIndex: k, className: student.classes[k]! });
    }
    return out;
  };
}

export async function evaluateModel(
  model: ModelHandle,
  images: readonly { id: string; objects: readonly AnnotatedObject[] }[],
  loadImage: ImageLoader,
  o: EvaluateOptions,
): Promise<EvalSummary> {
  // Only the classes the student has are decoded, so they are not crowded out by the 100-box cap.
  const classIndices = sameClasses(model.manifest, o.student) ? undefined : [...teacherToStudentClasses(model.manifest, o.student).keys()];
  const detect = inStudentClasses(createGflDetector(o.runner ?? runnerOf(model), model.manifest, { ...EVAL_DETECT_OPTIONS, inputSize: o.inputSize, classIndices }), model.manifest, o.student);
  const report = await evaluateDetector(
    images.map((i) => ({ id: i.id, objects: i.objects })),
    detect,
    { classNames: o.student.classes, loadImage, signal: o.signal, onProgress: (p) => o.onProgress?.(p.done, p.total) },
  );
  const { images: _images, ...rest } = report;
  return { ...rest, inputSize: o.inputSize, model: model.manifest.name };
}
