import { photosTeach } from '../../train/config';
import { estimateRun, planRun, type Estimate, type RunPlan } from '../schedule-estimate';
import { useLabStore } from '../store';

/** The schedule's step count and time estimate for the experiment as it stands (null before data and models). */
export function usePlan(): { plan: RunPlan; estimate: Estimate | null } | null {
  const config = useLabStore((s) => s.config);
  const data = useLabStore((s) => s.data);
  const photos = useLabStore((s) => s.photos);
  const teacher = useLabStore((s) => s.models.teacher);
  const student = useLabStore((s) => s.models.student);
  const backend = useLabStore((s) => s.backend);
  const msPerStep = useLabStore((s) => (s.training.stepsSeen > 0 ? s.training.msPerStep : 0));
  const shape = useLabStore((s) => s.training.shape);
  if (!config || data.status !== 'ready') return null;
  const s = config.schedule;
  // As the worker trains: photos only when a method reads them, the split left out when training on photos alone.
  const photosUsed = photos.status === 'ready' && photosTeach(config);
  const plan = planRun({
    trainImages: config.lab?.photosOnly ? 0 : data.value.train.images.length,
    maxTrainImages: config.lab?.maxTrainImages,
    photos: photosUsed ? photos.value.count : 0,
    maxUnlabeled: config.data.maxUnlabeled,
    batchSize: s.batchSize,
    epochs: s.epochs,
    steps: s.steps,
    annotatedPerBatch: config.data.annotatedPerBatch,
  });
  if (student.status !== 'ready' || backend.status !== 'ready') return { plan, estimate: null };
  const usesTeacher = config.methods.length > 0 || photosUsed;
  const estimate = estimateRun({
    totalSteps: plan.totalSteps,
    batchSize: s.batchSize,
    inputSize: s.inputSize,
    student: { macs: student.value.macs, inputSize: student.value.inputSize },
    teacher: usesTeacher && teacher.status === 'ready' ? { macs: teacher.value.macs, inputSize: teacher.value.inputSize } : undefined,
    backend: backend.value.backend,
    software: backend.value.adapter?.isFallback === true || backend.value.attempts.some((a) => a.ok && a.software),
    measured: msPerStep && shape ? { msPerStep, ...shape } : undefined,
  });
  return { plan, estimate };
}
