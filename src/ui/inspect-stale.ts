/**
 * Whether the inspection on screen still shows what is selected: the image, the boxes' threshold,
 * the methods and input size, and the student's weights. Each difference is a reason, in words.
 */
import type { LabExperiment, LabInspection } from '../worker/lab';

export interface InspectSelection {
  split: 'train' | 'val';
  imageId: string | null;
  ldObject: number;
  scoreThreshold: number;
  weightsChanged: string | null;
}

const methodsKey = (methods: LabExperiment['methods']) => JSON.stringify([...methods].sort((a, b) => a.id.localeCompare(b.id)));

export function staleReasons(r: LabInspection, selection: InspectSelection, config: LabExperiment | null): string[] {
  const out: string[] = [];
  if (selection.imageId !== r.imageId || selection.split !== r.split) out.push(`${selection.imageId ?? 'no image'} (${selection.split}) is selected now`);
  if (selection.ldObject !== r.ldObject && selection.ldObject < r.objects.length && r.methods.some((m) => m.id === 'ld')) out.push(`LD object ${selection.ldObject} is chosen now`);
  if (selection.scoreThreshold !== r.scoreThreshold) out.push(`boxes are asked from score ${selection.scoreThreshold.toFixed(2)} now`);
  if (config && methodsKey(config.methods) !== methodsKey(r.methods)) out.push('the chosen methods or their parameters changed');
  if (config && config.schedule.inputSize !== r.inputSize) out.push(`the input size is ${config.schedule.inputSize} now`);
  if (selection.weightsChanged) out.push(selection.weightsChanged);
  return out;
}

/** "2007_000061 (train) · student at step 3", the caption every map set carries. */
export function inspectionSource(r: Pick<LabInspection, 'imageId' | 'split' | 'studentStep' | 'inputSize'>): string {
  const step = r.studentStep === 0 ? 'student as loaded (step 0)' : `student at step ${r.studentStep}`;
  return `${r.imageId} (${r.split}) · ${r.inputSize}² · ${step}`;
}
