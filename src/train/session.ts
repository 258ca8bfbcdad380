/**
 * A distillation session: the teacher (constant), the student (trainable), the chosen methods
 * with their connectors, and the checks that the pair can work together. Shared by the worker,
 * the command line and the tests.
 */
import type * as tf from '@tensorflow/tfjs';
import { makeAnchorGrid, type AnchorGrid } from '../detect/anchors';
import { mapVocClasses } from '../data/voc/classes';
import { createMethod, getMethod, type MethodInstance } from '../distill/registry';
import type { TrainableGraph } from '../graph/executor';
import type { ModelManifest } from '../models/manifest';
import type { MethodConfig } from './config';
import { tapNames, type ReadOptions } from './detector-taps';

export interface ModelHandle {
  graph: TrainableGraph;
  manifest: ModelManifest;
}

/**
 * For each student class, the teacher's channel of the same class: from the student's
 * derivation record, else by name (with the VOC↔COCO aliases). Undefined entries: no match.
 */
export function teacherChannelsForStudent(teacher: ModelManifest, student: ModelManifest): (number | undefined)[] {
  if (student.derivedFrom?.model === teacher.name && student.derivedFrom.classIndices?.length === student.classes.length) {
    return student.derivedFrom.classIndices;
  }
  const norm = (s: string) => s.toLowerCase().replace(/[\s_-]+/g, '');
  const byName = new Map(teacher.classes.map((c, i) => [norm(c), i]));
  const voc = mapVocClasses(teacher.classes).toModel as Record<string, number | undefined>;
  return student.classes.map((c) => byName.get(norm(c)) ?? voc[c]);
}

/** Every reason this teacher/student pair cannot run these methods; empty when it can. */
export function checkPair(teacher: ModelManifest, student: ModelManifest, methods: readonly MethodConfig[]): string[] {
  const problems: string[] = [];
  const needs = new Set(methods.flatMap((m) => getMethod(m.id).needs));
  const ids = methods.map((m) => m.id);
  if (teacher.head.strides.join() !== student.head.strides.join()) {
    problems.push(`The teacher's head strides (${teacher.head.strides.join('/')}) differ from the student's (${student.head.strides.join('/')}): the methods compare them level by level.`);
  }
  if (needs.has('boxLogits') && teacher.head.regMax !== student.head.regMax) {
    problems.push(`${ids.filter((id) => getMethod(id).needs.includes('boxLogits')).join(', ')} compare box distributions bin by bin, but the teacher has reg_max ${teacher.head.regMax} and the student ${student.head.regMax}.`);
  }
  if (needs.has('neck') && (!teacher.taps?.neck?.length || !student.taps?.neck?.length)) {
    problems.push('A feature method is chosen but a manifest names no neck taps ("taps.neck").');
  } else if (needs.has('neck') && teacher.taps!.neck!.length !== student.taps!.neck!.length) {
    problems.push(`The teacher has ${teacher.taps!.neck!.length} neck levels and the student ${student.taps!.neck!.length}.`);
  }
  if (needs.has('stage')) {
    const t = teacher.taps?.backbone?.length ?? 0;
    const st = student.taps?.backbone?.length ?? 0;
    if (!t || !st) problems.push('Hints at every stage read the backbone stage outputs, but a manifest names none ("taps.backbone").');
    else if (t !== st) problems.push(`Hints pair backbone stages one to one, but the teacher taps ${t} stages and the student ${st}.`);
  }
  if (needs.has('headFeature') && (!teacher.taps?.headFeatures?.length || !student.taps?.headFeatures?.length)) {
    problems.push('Head mimicking is chosen but a manifest names no head-feature taps ("taps.headFeatures").');
  }
  if (needs.has('classLogits')) {
    const channels = teacherChannelsForStudent(teacher, student);
    const missing = student.classes.filter((_, k) => channels[k] === undefined);
    if (missing.length) problems.push(`The teacher has no class for the student's ${missing.join(', ')}: class-score methods cannot compare them.`);
  }
  return problems;
}

export interface DistillSession {
  teacher: ModelHandle | null;
  student: ModelHandle;
  methods: MethodInstance[];
  detectionWeight: number;
  /** Teacher class channels in the student's class order (undefined: same label space). */
  teacherChannels?: number[];
  /** How to read the teacher: in the student's label space, at a derived student's kept channels. */
  teacherRead: ReadOptions;
  /** How to read the student (backbone stages only when a method needs them). */
  studentRead: ReadOptions;
  /** The teacher's feature taps some method reads (its head outputs are always read). */
  teacherFeatures: FeatureTap[];
  grid(inputSize: number): AnchorGrid;
  /** What the optimizer updates: the student's unfrozen weights and every connector's. */
  trainableVariables(): tf.Variable[];
  dispose(): void;
}

type TapKind = 'backbone' | 'neck' | 'headFeatures';

/** A detector's feature taps (`DetectorTaps`' feature fields), and what a method that reads one needs. */
export type FeatureTap = 'backbone' | 'neck' | 'head';
const FEATURE_NEED = { backbone: 'stage', neck: 'neck', head: 'headFeature' } as const;

/**
 * Channel counts of the tapped features, from a shape pass at a tiny input (cheap on any
 * backend); a tap read at picked channels counts those.
 */
function featureChannels(h: ModelHandle, kind: TapKind, picked: Readonly<Record<string, readonly number[]>> = {}): number[] {
  const names = h.manifest.taps?.[kind] ?? [];
  if (!names.length) return [];
  const input = h.manifest.input;
  const small = input.layout === 'NCHW' ? [1, 3, 64, 64] : [1, 64, 64, 3];
  const shapes = h.graph.nodeShapes(names, { [input.name]: small });
  const layout = h.manifest.taps?.layout ?? 'NCHW';
  return names.map((n) => {
    const s = shapes.get(n)?.[0];
    if (!s) throw new Error(`Tap "${n}" is not in ${h.manifest.name}'s graph.`);
    return picked[n]?.length ?? (layout === 'NCHW' ? s[1]! : s[3]!);
  });
}

/**
 * For a student derived from this teacher by channel pruning: the teacher channels of each
 * pruned tap (its `derivedFrom.tapChannels`), checked against both graphs. Undefined for any
 * other pair.
 */
export function derivedTapChannels(teacher: ModelHandle, student: ModelHandle): Record<string, number[]> | undefined {
  const record = student.manifest.derivedFrom;
  if (!record?.tapChannels || record.model !== teacher.manifest.name) return undefined;
  const kinds: TapKind[] = ['backbone', 'neck', 'headFeatures'];
  for (const kind of kinds) {
    const namesT = teacher.manifest.taps?.[kind] ?? [];
    const namesS = student.manifest.taps?.[kind] ?? [];
    if (namesT.join() !== namesS.join()) return undefined;
  }
  const all = kinds.flatMap((k) => teacher.manifest.taps?.[k] ?? []);
  for (const node of Object.keys(record.tapChannels)) {
    if (!all.includes(node)) throw new Error(`${student.manifest.name}: its derivation names tap "${node}", which ${teacher.manifest.name} does not tap. Derive the student again.`);
  }
  const picked = record.tapChannels;
  for (const kind of kinds) {
    const full = featureChannels(teacher, kind);
    const countS = featureChannels(student, kind);
    (teacher.manifest.taps?.[kind] ?? []).forEach((node, i) => {
      const kept = picked[node];
      const expected = kept ? kept.length : full[i]!;
      const valid = !kept || kept.every((c, j) => Number.isInteger(c) && c >= 0 && c < full[i]! && (j === 0 || c > kept[j - 1]!));
      if (!valid || expected !== countS[i]) {
        throw new Error(`${student.manifest.name}: its derivation record does not fit tap "${node}" (${countS[i]} student channels, ${expected} recorded of the teacher's ${full[i]}). Derive the student again from this teacher.`);
      }
    });
  }
  return picked;
}

export function createSession(options: {
  teacher: ModelHandle | null;
  student: ModelHandle;
  methods: readonly MethodConfig[];
  detectionWeight: number;
  seed?: number;
  /** Train only the student weights whose names match (see `ExperimentConfig.trainOnly`); absent: all. */
  trainOnly?: string;
  /**
   * Per tapped node, the channels of a full-width student that will stay (the others fade out,
   * src/derive/fade.ts): feature methods compare the student and the teacher there only.
   */
  keptTapChannels?: Record<string, number[]>;
}): DistillSession {
  const { teacher, student, methods, detectionWeight } = options;
  if (options.trainOnly) student.graph.trainOnly(new RegExp(options.trainOnly));
  else student.graph.freeze([]);
  if (methods.length && !teacher) throw new Error('Distillation methods need a teacher model.');
  if (!methods.length && !(detectionWeight > 0)) throw new Error('Nothing to train: choose a method or give the detection loss a weight.');
  if (teacher) {
    const problems = checkPair(teacher.manifest, student.manifest, methods);
    if (problems.length) throw new Error(`${teacher.manifest.name} and ${student.manifest.name} cannot be distilled this way:\n- ${problems.join('\n- ')}`);
  }
  // Before any step: name every node the student's gradient could not pass, rather than fail in backprop.
  student.graph.assertGradients(tapNames(student.manifest));
  const needs = new Set(methods.flatMap((m) => getMethod(m.id).needs));
  const kept = options.keptTapChannels;
  const picked = teacher ? (kept ?? derivedTapChannels(teacher, student)) : undefined;
  const channels = teacher
    ? {
        stage: needs.has('stage') ? { teacher: featureChannels(teacher, 'backbone', picked), student: featureChannels(student, 'backbone', kept) } : undefined,
        neck: needs.has('neck') ? { teacher: featureChannels(teacher, 'neck', picked), student: featureChannels(student, 'neck', kept) } : undefined,
        headFeature: needs.has('headFeature')
          ? { teacher: featureChannels(teacher, 'headFeatures', picked), student: featureChannels(student, 'headFeatures', kept) }
          : undefined,
        seed: options.seed ?? 0,
      }
    : {};
  const labels = new Map<string, number>();
  const instances = methods.map((m) => {
    const n = labels.get(m.id) ?? 0;
    labels.set(m.id, n + 1);
    return createMethod(m.id, { params: m.params as never, scale: m.scale, label: n ? `${m.id}#${n + 1}` : m.id, channels });
  });
  let teacherChannels: number[] | undefined;
  // The teacher is read in the student's label space whenever every student class has a teacher
  // class: class-score methods need it, and so do pseudo boxes for photos without annotations.
  if (teacher) {
    const ch = teacherChannelsForStudent(teacher.manifest, student.manifest);
    const complete = ch.every((c) => c !== undefined);
    const identity = ch.length === teacher.manifest.classes.length && ch.every((c, i) => c === i);
    if (complete && !identity) teacherChannels = ch as number[];
  }
  const grids = new Map<number, AnchorGrid>();
  return {
    teacher,
    student,
    methods: instances,
    detectionWeight,
    teacherChannels,
    teacherRead: { classChannels: teacherChannels, featureChannels: picked, backbone: needs.has('stage') },
    studentRead: { backbone: needs.has('stage'), ...(kept ? { featureChannels: kept } : {}) },
    teacherFeatures: (['backbone', 'neck', 'head'] as const).filter((f) => needs.has(FEATURE_NEED[f])),
    grid(inputSize) {
      let g = grids.get(inputSize);
      if (!g) {
        const h = student.manifest.head;
        g = makeAnchorGrid(inputSize, h.strides, h.octaveBaseScale);
        grids.set(inputSize, g);
      }
      return g;
    },
    trainableVariables: () => [...student.graph.trainableVariables(), ...instances.flatMap((m) => m.variables)],
    dispose: () => instances.forEach((m) => m.dispose()),
  };
}
