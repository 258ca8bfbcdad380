import { create } from 'zustand';
import type { BackendReport } from '../worker/backend-types';
import type { ImageDetections, ModelSummary } from '../worker/lab';

/** Every async piece of the page is in one of these states; errors carry a message for people. */
export type Loadable<T> =
  | { status: 'idle' }
  | { status: 'loading'; detail?: string }
  | { status: 'ready'; value: T }
  | { status: 'error'; error: string };

export interface ShownImage {
  url: string;
  name: string;
}

export interface LabState {
  backend: Loadable<BackendReport>;
  teacher: Loadable<ModelSummary>;
  /** The image on screen. A file that fails to decode never replaces it. */
  image: ShownImage | null;
  detections: Loadable<ImageDetections>;
  scoreThreshold: number;
  /** A problem that did not change what is on screen (e.g. a corrupt file was dropped). */
  notice: string | null;
  deviceLost: string | null;
}

export const useLabStore = create<LabState>(() => ({
  backend: { status: 'idle' },
  teacher: { status: 'idle' },
  image: null,
  detections: { status: 'idle' },
  scoreThreshold: 0.35,
  notice: null,
  deviceLost: null,
}));
