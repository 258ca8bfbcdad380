import * as tf from '@tensorflow/tfjs';
import { decodeImageBlob } from '../data/decode-browser';
import { DEFAULT_DETECT_OPTIONS, detectGfl, type DetectOptions, type DetectResult } from '../detect/nanodet';
import { loadModelFromUrl, type LoadedModel } from '../models/load';
import { currentWebGpuDevice, selectBackend, type BackendName, type BackendReport } from './backend';

export type ModelRole = 'teacher' | 'student';

/** What the UI shows about a loaded model: plain data only, never a tensor. */
export interface ModelSummary {
  role: ModelRole;
  name: string;
  description?: string;
  source?: string;
  parameterCount: number;
  weightBytes: number;
  inputSize: number;
  classCount: number;
  strides: number[];
  regMax: number;
}

export interface ImageDetections extends DetectResult {
  imageName: string;
  imageWidth: number;
  imageHeight: number;
  backend: string;
}

/** Events the worker pushes to the page without being asked. */
export type LabEvent = { type: 'device-lost'; message: string };

/**
 * The lab's model work, run inside the worker: the only owner of the tfjs backend and the
 * models. Every method takes and returns plain, structured-clonable data.
 */
export class Lab {
  private models = new Map<ModelRole, LoadedModel>();
  private backendReport?: BackendReport;
  private deviceLost?: string;
  private listeners: ((event: LabEvent) => void)[] = [];
  /** Model work runs one call at a time: the GPU queue is shared and results must not interleave. */
  private queue: Promise<unknown> = Promise.resolve();

  private serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work, work);
    this.queue = next.catch(() => undefined);
    return next;
  }

  subscribe(listener: (event: LabEvent) => void): void {
    this.listeners.push(listener);
  }

  init(order?: BackendName[]): Promise<BackendReport> {
    return this.serial(async () => {
      if (this.backendReport) return this.backendReport;
      const report = await selectBackend(order);
      this.backendReport = report;
      const device = report.backend === 'webgpu' ? currentWebGpuDevice() : undefined;
      void device?.lost.then((info) => {
        this.deviceLost = `The GPU device was lost (${info.reason}: ${info.message || 'no detail'}). Reload the page to start a new device; loaded files stay on your disk.`;
        for (const l of this.listeners) l({ type: 'device-lost', message: this.deviceLost });
      });
      return report;
    });
  }

  loadModel(role: ModelRole, manifestUrl: string): Promise<ModelSummary> {
    return this.serial(async () => {
      this.assertUsable();
      const model = await loadModelFromUrl(manifestUrl);
      this.models.get(role)?.graph.dispose();
      this.models.set(role, model);
      return summarizeModel(role, model);
    });
  }

  detect(role: ModelRole, image: Blob, imageName: string, options: Partial<DetectOptions> = {}): Promise<ImageDetections> {
    return this.serial(async () => {
      this.assertUsable();
      const model = this.models.get(role);
      if (!model) throw new Error(`No ${role} model is loaded yet.`);
      const pixels = await decodeImageBlob(image, imageName);
      const result = await detectGfl(model.runner, model.manifest, pixels, { ...DEFAULT_DETECT_OPTIONS, ...options });
      return { ...result, imageName, imageWidth: pixels.width, imageHeight: pixels.height, backend: tf.getBackend() };
    });
  }

  memory(): { numTensors: number; numBytes: number } {
    const { numTensors, numBytes } = tf.memory();
    return { numTensors, numBytes };
  }

  private assertUsable() {
    if (this.deviceLost) throw new Error(this.deviceLost);
    if (!this.backendReport) throw new Error('The worker has no backend yet: call init() first.');
  }
}

function summarizeModel(role: ModelRole, model: LoadedModel): ModelSummary {
  const { manifest } = model;
  return {
    role,
    name: manifest.name,
    description: manifest.description,
    source: manifest.source,
    parameterCount: model.parameterCount,
    weightBytes: model.weightBytes,
    inputSize: manifest.input.size,
    classCount: manifest.classes.length,
    strides: manifest.head.strides,
    regMax: manifest.head.regMax,
  };
}
