/**
 * The first run as four steps (models → data → methods → train), which one comes next, and every
 * reason Train cannot start yet, in words that say where to go.
 */
import { useLabStore, type LabState } from './store';

export type StepId = 'models' | 'data' | 'methods' | 'train';
export interface PathStep {
  id: StepId;
  label: string;
  state: 'done' | 'next' | 'todo';
  /** What this step holds now ("NanoDet-g → half depth", "voc-fixture, 20 images"). */
  detail: string;
}

type Slice = Pick<LabState, 'backend' | 'deviceLost' | 'models' | 'data' | 'pairProblems' | 'config' | 'invalidFields' | 'training'>;

/** The state the path and Train's reasons read, each piece selected on its own (stable references). */
export function useRunSlice(): Slice {
  const backend = useLabStore((s) => s.backend);
  const deviceLost = useLabStore((s) => s.deviceLost);
  const models = useLabStore((s) => s.models);
  const data = useLabStore((s) => s.data);
  const pairProblems = useLabStore((s) => s.pairProblems);
  const config = useLabStore((s) => s.config);
  const invalidFields = useLabStore((s) => s.invalidFields);
  const training = useLabStore((s) => s.training);
  return { backend, deviceLost, models, data, pairProblems, config, invalidFields, training };
}

const methodsChosen = (s: Slice) => !!s.config && (s.config.methods.length > 0 || s.config.detectionWeight > 0);

export function trainBlockers(s: Slice, plannedSteps?: number): string[] {
  const out: string[] = [];
  if (s.backend.status === 'error') out.push('No compute backend works here (see Compute backend).');
  else if (s.backend.status !== 'ready') out.push('The compute backend is starting.');
  if (s.deviceLost) out.push('The GPU device was lost: restart the compute worker (Compute backend).');
  for (const role of ['teacher', 'student'] as const) {
    const m = s.models[role];
    if (m.status === 'loading' || m.status === 'idle') out.push(`The ${role} is loading (step 1).`);
    else if (m.status === 'error') out.push(`The ${role} did not load: see its card (step 1).`);
  }
  if (s.pairProblems.length > 0) out.push('This teacher and student cannot work together: see why under the models (step 1).');
  if (s.data.status === 'loading') out.push('The data is loading (step 2).');
  else if (s.data.status !== 'ready') out.push('Load a VOC folder or archive (step 2).');
  if (s.config && !methodsChosen(s)) out.push('Choose a method or keep the detection loss (step 3).');
  const invalid = Object.values(s.invalidFields);
  if (invalid.length > 0) out.push(`Fix ${invalid.join(', ')} first: a field outlined in red holds no valid value.`);
  if (s.data.status === 'ready' && plannedSteps === 0 && s.config) out.push(`The training images are fewer than one batch of ${s.config.schedule.batchSize}: lower the batch size or use more images.`);
  return out;
}

function methodsText(s: Slice): string {
  if (!s.config) return '';
  const ids = s.config.methods.map((m) => m.id);
  const detection = s.config.detectionWeight > 0;
  if (ids.length === 0) return detection ? 'detection loss only (plain fine-tuning)' : 'none chosen';
  return `${ids.join(', ')}${detection ? ' + detection loss' : ''}`;
}

export function firstRunPath(s: Slice): PathStep[] {
  const t = s.models.teacher;
  const st = s.models.student;
  const modelsDone = t.status === 'ready' && st.status === 'ready' && s.pairProblems.length === 0;
  const dataDone = s.data.status === 'ready';
  const methodsDone = methodsChosen(s);
  const trained = s.training.status !== 'idle' || s.training.history.length > 0;
  const done: Record<StepId, boolean> = { models: modelsDone, data: dataDone, methods: methodsDone && modelsDone && dataDone, train: trained };
  const detail: Record<StepId, string> = {
    models: modelsDone ? `${t.status === 'ready' ? t.value.name : ''} → ${st.status === 'ready' ? st.value.name : ''}` : t.status === 'error' || st.status === 'error' ? 'a model did not load' : s.pairProblems.length ? 'pair refused' : 'loading…',
    data: dataDone ? `${s.data.status === 'ready' ? `${s.data.value.label}, ${s.data.value.train.images.length} training images` : ''}` : s.data.status === 'loading' ? 'loading…' : 'pick a VOC folder',
    methods: methodsText(s),
    train: trained ? s.training.status : 'not started',
  };
  const labels: Record<StepId, string> = { models: 'Models', data: 'Data', methods: 'Methods', train: 'Train' };
  const order: StepId[] = ['models', 'data', 'methods', 'train'];
  const next = order.find((id) => !done[id]);
  return order.map((id) => ({ id, label: labels[id], state: done[id] ? 'done' : id === next ? 'next' : 'todo', detail: detail[id] }));
}
