/**
 * Before Train: how many steps the schedule makes (as the trainer counts them: whole batches per
 * epoch) and about how long they take. The time is a measurement from this page's last run when
 * there is one at the same batch and input size, else a rough guess from the models' MACs.
 */
import { stepsPerEpoch } from '../train/epoch';
import type { BackendName } from '../worker/backend-types';

export interface RunPlan {
  images: number;
  perEpoch: number;
  totalSteps: number;
  /** When every batch holds annotated images beside photos: an epoch is one pass over the photos. */
  mixed?: { photos: number; annotatedPerBatch: number };
  /** The schedule fixes the step count (schedule.steps), overriding the epochs. */
  fixedSteps?: boolean;
}

export function planRun(o: { trainImages: number; maxTrainImages?: number; photos: number; maxUnlabeled?: number; batchSize: number; epochs: number; steps?: number; annotatedPerBatch?: number }): RunPlan {
  const labelled = o.maxTrainImages && o.maxTrainImages > 0 ? Math.min(o.trainImages, o.maxTrainImages) : o.trainImages;
  const photos = o.maxUnlabeled !== undefined && o.maxUnlabeled >= 0 ? Math.min(o.photos, o.maxUnlabeled) : o.photos;
  const images = labelled + photos;
  const batch = Math.max(1, Math.floor(o.batchSize));
  const epochs = Math.max(0, Math.floor(o.epochs));
  const k = Math.floor(o.annotatedPerBatch ?? 0);
  const mixed = k > 0 && k < batch && labelled > 0 && photos > 0 ? { photos, annotatedPerBatch: k } : undefined;
  // As the trainer counts them; fewer images than a batch train nothing.
  const perEpoch = images < batch ? 0 : stepsPerEpoch(images, batch, mixed);
  const fixed = perEpoch > 0 && o.steps !== undefined && o.steps > 0 ? Math.floor(o.steps) : 0;
  return { images, perEpoch, totalSteps: fixed || perEpoch * epochs, ...(mixed ? { mixed } : {}), ...(fixed ? { fixedSteps: true } : {}) };
}

/** Rough training throughput (multiply-accumulates per second, forward and backward) when nothing was measured. */
const PRIOR_GMACS: Record<BackendName, number> = { wasm: 2.5, webgl: 20, webgpu: 60 };
const SOFTWARE_GPU_GMACS = 0.8;
const STEP_OVERHEAD_MS = 400;

export interface Estimate {
  seconds: number;
  /** 'measured': scaled from this page's last run; 'rough': from the MACs and the backend. */
  basis: 'measured' | 'rough';
}

export function estimateRun(o: {
  totalSteps: number;
  batchSize: number;
  inputSize: number;
  /** Multiply-accumulates per image of each model at its own input size. */
  student: { macs: number; inputSize: number };
  teacher?: { macs: number; inputSize: number };
  backend: BackendName;
  software: boolean;
  measured?: { msPerStep: number; batchSize: number; inputSize: number };
}): Estimate {
  // Per image: the teacher's forward (when used), the student's forward and backward (about 3 forwards).
  const at = (m: { macs: number; inputSize: number }) => m.macs * (o.inputSize / m.inputSize) ** 2;
  const perImage = 3 * at(o.student) + (o.teacher ? at(o.teacher) : 0);
  const m = o.measured;
  if (m && m.msPerStep > 0 && m.batchSize === o.batchSize && m.inputSize === o.inputSize) {
    return { seconds: (o.totalSteps * m.msPerStep) / 1000, basis: 'measured' };
  }
  const rate = (o.software ? SOFTWARE_GPU_GMACS : PRIOR_GMACS[o.backend]) * 1e9;
  const ms = STEP_OVERHEAD_MS + (o.batchSize * perImage * 1000) / rate;
  return { seconds: (o.totalSteps * ms) / 1000, basis: 'rough' };
}
