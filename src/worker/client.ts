import * as Comlink from 'comlink';
import type { Lab, LabEvent } from './lab';

export type LabClient = Comlink.Remote<Lab>;

/** Starts the model worker and returns its typed façade (types come from Lab itself) and the worker, to end it. */
export function startLabWorker(onEvent: (event: LabEvent) => void): { lab: LabClient; worker: Worker } {
  const worker = new Worker(new URL('./lab.worker.ts', import.meta.url), { type: 'module', name: 'distill-lab-models' });
  const lab = Comlink.wrap<Lab>(worker);
  void lab.subscribe(Comlink.proxy(onEvent));
  return { lab, worker };
}
