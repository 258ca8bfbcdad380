/**
 * Inspection of one image with the current student: the teacher's and the student's detections,
 * and the panel maps every chosen method computes for that image, from one forward of the
 * session with no update (teacher and student taps, the shared ATSS assignment, the methods with
 * `withMaps`). Map reads are deferred (asynchronous on WebGPU); every tensor is disposed.
 *
 * Frames: everything drawn over the image is in model-input pixels (the letterboxed square of
 * side `inputSize`), where the maps live: heatmaps [1,H,W] per level cover that square, GT boxes
 * are the assignment's, detections are mapped there from source pixels. The image sits in the
 * square at `letterbox.padLeft/padTop`, `resizedWidth` × `resizedHeight`.
 */
import * as tf from '@tensorflow/tfjs';
import type { RgbImage } from '../data/image';
import { prepareSample, samplesToTensor, type AnnotatedObject, type TrainingBatch } from '../data/pipeline';
import { sourceToInput, type Letterbox } from '../detect/letterbox';
import { detectGfl } from '../detect/nanodet';
import { deferMapReads } from '../distill/readback';
import { createMethod, runMethods, type MethodInstance } from '../distill/registry';
import type { PanelMap } from '../distill/types';
import { EVAL_DETECT_OPTIONS } from '../eval/evaluate-detector';
import type { MethodConfig } from '../train/config';
import { disposeTaps, readDetector } from '../train/detector-taps';
import type { DistillSession } from '../train/session';
import { assignBatch, distillInputs } from '../train/step';
import { runnerOf } from './models';

export type Box4 = [number, number, number, number];

export interface InspectDetection {
  /** Model-input pixels. */
  box: Box4;
  classIndex: number;
  className: string;
  score: number;
}

export interface InspectObject {
  /** Model-input pixels (continuous). */
  box: Box4;
  classIndex: number;
  className: string;
  /** Anchors assigned to it (ATSS positives). */
  positives: number;
}

export interface InspectOptions {
  inputSize: number;
  /** Detections below this score are not returned. Default 0.3. */
  scoreThreshold?: number;
  /** Index (into `objects`) of the object LD's edge distributions are read for. Default 0. */
  ldObject?: number;
  /** The chosen methods' configs (for LD's parameters). */
  methods?: readonly MethodConfig[];
}

export interface InspectionResult {
  imageId: string;
  width: number;
  height: number;
  inputSize: number;
  letterbox: Letterbox;
  levels: { stride: number; height: number; width: number }[];
  objects: InspectObject[];
  teacher: InspectDetection[] | null;
  student: InspectDetection[];
  /** Named '<method label>/<map name>'. */
  maps: PanelMap[];
  /** The methods' terms for this image, unweighted as each method names them, plus their weighted losses. */
  terms: Record<string, number>;
  ldObject: number;
  scoreThreshold: number;
  elapsedMs: number;
}

const tuple = (b: readonly number[]): Box4 => [b[0] ?? 0, b[1] ?? 0, b[2] ?? 0, b[3] ?? 0];

/** Runs the inspection; see the module comment. `image` is the decoded photo of `imageId`. */
export async function inspectImage(
  session: DistillSession,
  image: RgbImage,
  imageId: string,
  annotated: readonly AnnotatedObject[],
  options: InspectOptions,
): Promise<InspectionResult> {
  const started = performance.now();
  const { student, teacher } = session;
  const inputSize = options.inputSize;
  const sample = prepareSample(image, annotated, { inputSize, flip: false });
  const input = samplesToTensor([sample], student.manifest);
  const batch: TrainingBatch = { input, gts: [sample.gts], letterboxes: [sample.letterbox], ids: [imageId], flipped: [false] };
  const ldObject = Math.max(0, Math.min(options.ldObject ?? 0, sample.gts.length - 1));
  // LD reads its edge distributions for one object, named in its parameters: a fresh instance
  // (LD has no trainable connectors) reads the chosen one.
  const ldParams = options.methods?.find((m) => m.id === 'ld')?.params ?? {};
  const extra: MethodInstance[] = [];
  const instances = session.methods.map((m) => {
    if (m.id !== 'ld') return m;
    const fresh = createMethod('ld', { params: { ...(ldParams as object), mapImage: 0, mapGt: ldObject }, scale: m.scale, label: m.label });
    extra.push(fresh);
    return fresh;
  });
  let maps: PanelMap[] = [];
  const terms: Record<string, number> = {};
  let objects: InspectObject[];
  let levels: InspectionResult['levels'];
  try {
    const assignments = assignBatch(session, batch);
    const a = assignments[0]!;
    levels = a.grid.levels.map((l) => ({ stride: l.stride, height: l.height, width: l.width }));
    objects = a.gts.map((g, j) => ({
      box: tuple(g.box),
      classIndex: g.classIndex,
      className: student.manifest.classes[g.classIndex] ?? `class ${g.classIndex}`,
      positives: a.positives[j]?.length ?? 0,
    }));
    if (session.methods.length > 0 && sample.gts.length > 0) {
      const tapsT = teacher ? readDetector(teacher.graph, teacher.manifest, input, session.teacherRead) : undefined;
      const tapsS = readDetector(student.graph, student.manifest, input, session.studentRead);
      try {
        const result = await deferMapReads(() =>
          tf.tidy(() => {
            const r = runMethods(instances, distillInputs(session, tapsT, tapsS, assignments), { withMaps: true });
            maps = r.maps ?? [];
            return r.terms;
          }),
        );
        const names = Object.keys(result);
        const values = await Promise.all(names.map((n) => result[n]!.data()));
        names.forEach((n, i) => (terms[n] = values[i]![0]!));
        tf.dispose(Object.values(result));
      } finally {
        if (tapsT) disposeTaps(tapsT);
        disposeTaps(tapsS);
      }
    }
  } finally {
    input.dispose();
    extra.forEach((m) => m.dispose());
  }
  const scoreThreshold = options.scoreThreshold ?? 0.3;
  const detectOptions = { ...EVAL_DETECT_OPTIONS, scoreThreshold, inputSize };
  const toInput = (d: { box: readonly number[]; classIndex: number; className: string; score: number }): InspectDetection => ({
    box: tuple(sourceToInput(sample.letterbox, tuple(d.box))),
    classIndex: d.classIndex,
    className: d.className,
    score: d.score,
  });
  const studentDetections = (await detectGfl(runnerOf(student), student.manifest, image, detectOptions)).detections.map(toInput);
  const teacherDetections = teacher ? (await detectGfl(runnerOf(teacher), teacher.manifest, image, detectOptions)).detections.map(toInput) : null;
  return {
    imageId,
    width: image.width,
    height: image.height,
    inputSize,
    letterbox: sample.letterbox,
    levels,
    objects,
    teacher: teacherDetections,
    student: studentDetections,
    maps,
    terms,
    ldObject,
    scoreThreshold,
    elapsedMs: performance.now() - started,
  };
}

/** The typed arrays of the maps, for Comlink.transfer (each map owns its buffers). */
export function mapBuffers(maps: readonly PanelMap[]): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  for (const m of maps) {
    out.add(m.data.buffer as ArrayBuffer);
    if (m.kind === 'distribution') out.add(m.positions.buffer as ArrayBuffer);
  }
  return [...out];
}
