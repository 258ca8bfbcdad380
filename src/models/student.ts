/**
 * The lab's default student: NanoDet-g with half of its CSP blocks removed (each stage keeps its
 * first block: 1, 2, 2, 3 blocks become 1, 1, 1, 1) and its head cut from the 80 COCO classes to
 * the 20 PASCAL VOC classes, all with the teacher's own weights. Made at install time, when no
 * photos exist to calibrate on: a structural starting point, not a working detector (src/derive
 * derives working students from photos).
 */
import type * as tf from '@tensorflow/tfjs-core';
import { VOC_CLASSES, mapVocClasses } from '../data/voc/classes';
import { exportGraph } from '../graph/export';
import { graphFromArtifacts } from '../graph/load';
import { profileGraph } from '../graph/profile';
import { artifactsFromParts, disposeParts, findRemovableBlocks, keepClasses, partsFromArtifacts, removeBlocks, type Block } from '../graph/surgery';
import type { ModelManifest } from './manifest';

/** CSP blocks (exit: the block's concat) grouped into stages: chains where one's output is the next's input. */
export function cspStages(blocks: Block[]): Block[][] {
  const csp = blocks.filter((b) => b.outputOp === 'ConcatV2');
  const byInput = new Map(csp.map((b) => [b.input, b]));
  const outputs = new Set(csp.map((b) => b.output));
  const stages: Block[][] = [];
  for (const first of csp.filter((b) => !outputs.has(b.input))) {
    const chain = [first];
    for (let next = byInput.get(first.output); next; next = byInput.get(next.output)) chain.push(next);
    stages.push(chain);
  }
  return stages;
}

export interface DerivedStudent {
  artifacts: tf.io.ModelArtifacts;
  manifest: ModelManifest;
  teacherProfile: { parameters: number; macs: number };
  stages: { kept: number; removed: number }[];
}

export async function deriveDefaultStudent(teacher: tf.io.ModelArtifacts, teacherManifest: ModelManifest, modelFile: string): Promise<DerivedStudent> {
  const teacherGraph = graphFromArtifacts(teacher, { trainable: false });
  let parts = partsFromArtifacts(teacher);
  try {
    const teacherProfile = profileGraph(teacherGraph);
    const shapes = teacherGraph.nodeShapes();
    const stages = cspStages(findRemovableBlocks(parts, shapes));
    if (stages.length === 0) throw new Error('No CSP blocks found: this teacher does not look like NanoDet-g.');
    const removed = stages.flatMap((chain) => chain.slice(1));
    parts = removeBlocks(parts, removed, teacherGraph.outputs);

    const mapping = mapVocClasses(teacherManifest.classes);
    if (mapping.unmapped.length) throw new Error(`The teacher has no class for: ${mapping.unmapped.join(', ')}.`);
    const classIndices = VOC_CLASSES.map((c) => mapping.toModel[c]!);
    parts = keepClasses(parts, { headOutputs: teacherManifest.head.outputs, numClasses: teacherManifest.classes.length, keep: classIndices });

    const studentGraph = graphFromArtifacts(await artifactsFromParts(parts), { trainable: false });
    try {
      const profile = profileGraph(studentGraph);
      const manifest: ModelManifest = {
        ...teacherManifest,
        name: 'NanoDet-g half-depth, VOC',
        description: `NanoDet-g with ${removed.length} of its ${removed.length + stages.length} CSP blocks removed (each stage keeps its first block) and its head cut to the 20 VOC classes, with the teacher's weights and no calibration on photos: it scores near 0 mAP before training. A student derived from photos (the lab's "Derive a student", or npm run derive-student) starts close to the teacher instead.`,
        source: `derived at install from ${teacherManifest.name} (${teacherManifest.source ?? 'teacher'})`,
        model: modelFile,
        classes: [...VOC_CLASSES],
        derivedFrom: { model: teacherManifest.name, classIndices, removedBlocks: removed.map(({ input, output }) => ({ input, output })) },
        profile: { parameters: profile.parameters, macs: profile.macs },
      };
      // The teacher's weights are float16 already, so float16 storage loses nothing.
      const artifacts = await exportGraph(studentGraph, { precision: 'float16' });
      return {
        artifacts,
        manifest,
        teacherProfile: { parameters: teacherProfile.parameters, macs: teacherProfile.macs },
        stages: stages.map((c) => ({ kept: 1, removed: c.length - 1 })),
      };
    } finally {
      studentGraph.dispose();
    }
  } finally {
    teacherGraph.dispose();
    disposeParts(parts);
  }
}
