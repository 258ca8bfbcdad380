import { BACKEND_ORDER, type BackendName } from '../worker/backend-types';
import { startLabWorker, type LabClient } from '../worker/client';
import { useLabStore } from './store';

const TEACHER_MANIFEST = '/models/nanodet.manifest.json';
export const MIN_SCORE_THRESHOLD = 0.05;

let lab: LabClient | undefined;
let detectionRun = 0;

const set = useLabStore.setState;
const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** Backend order from `?backend=wasm` or `?backend=webgl,wasm`, else the default. */
export function backendOrderFromQuery(search: string): BackendName[] {
  const requested = new URLSearchParams(search).get('backend');
  if (!requested) return [...BACKEND_ORDER];
  const names = requested.split(',').map((s) => s.trim()) as BackendName[];
  const valid = names.filter((n) => BACKEND_ORDER.includes(n));
  return valid.length > 0 ? valid : [...BACKEND_ORDER];
}

/** Starts the worker, picks the backend and loads the default teacher. */
export async function boot(): Promise<void> {
  if (lab) return; // React's StrictMode runs effects twice in development.
  lab = startLabWorker((event) => {
    if (event.type === 'device-lost') set({ deviceLost: event.message });
  });
  set({ backend: { status: 'loading', detail: 'choosing a backend' } });
  try {
    const report = await lab.init(backendOrderFromQuery(location.search));
    set({ backend: { status: 'ready', value: report } });
  } catch (error) {
    set({ backend: { status: 'error', error: messageOf(error) } });
    return;
  }
  set({ teacher: { status: 'loading', detail: 'loading NanoDet-g' } });
  try {
    const summary = await lab.loadModel('teacher', TEACHER_MANIFEST);
    set({ teacher: { status: 'ready', value: summary } });
  } catch (error) {
    set({ teacher: { status: 'error', error: messageOf(error) } });
  }
}

/**
 * Runs the teacher on a photo the person picked. The new image replaces the old one only once
 * the worker has decoded it; a broken file leaves the screen as it was, with a notice.
 */
export async function detectFile(file: File): Promise<void> {
  if (!lab) return;
  if (!file.type.startsWith('image/') && !/\.(jpe?g|png|webp|gif|bmp)$/i.test(file.name)) {
    set({ notice: `"${file.name}" is not an image file. Pick a JPEG, PNG or WebP photo.` });
    return;
  }
  const run = ++detectionRun;
  const previous = useLabStore.getState();
  set({ detections: { status: 'loading', detail: `detecting objects in ${file.name}` }, notice: null });
  try {
    // Detect down to the slider's floor; the slider then filters on the page without a rerun
    // (per-class greedy NMS commutes with a score cut: kept boxes only depend on higher scores).
    const result = await lab.detect('teacher', file, file.name, { scoreThreshold: MIN_SCORE_THRESHOLD });
    if (run !== detectionRun) return;
    if (previous.image) URL.revokeObjectURL(previous.image.url);
    set({ image: { url: URL.createObjectURL(file), name: file.name }, detections: { status: 'ready', value: result } });
  } catch (error) {
    if (run !== detectionRun) return;
    set({ detections: previous.detections, notice: messageOf(error) });
  }
}

export function setScoreThreshold(value: number): void {
  set({ scoreThreshold: value });
}
