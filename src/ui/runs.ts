/**
 * The run history on the page: its own small store (the list, storage used, problems, the runs
 * picked for comparison) and the actions behind the Runs panel. It talks to the worker through
 * the controller's client and refreshes itself when the lab's state says a run changed (a
 * checkpoint saved, a run ended, an evaluation done).
 */
import * as Comlink from 'comlink';
import { create } from 'zustand';
import type { LabEvent } from '../worker/lab';
import { toCsv, toJsonLines } from '../provenance/run-log';
import type { RecordRunsList, RunRecordFull } from './runs-types';
import { download, labClient, messageOf, resumeFromCheckpoint } from './controller';
import { initialTraining, isRunActive, useLabStore } from './store';

export interface RunsState {
  list: RecordRunsList | null;
  notice: string | null;
  busy: boolean;
  /** Runs picked for comparison (ids), and their full records once fetched. */
  picked: string[];
  compared: RunRecordFull[] | null;
}

export const useRunsStore = create<RunsState>(() => ({ list: null, notice: null, busy: false, picked: [], compared: null }));
const set = useRunsStore.setState;

export async function refreshRuns(): Promise<void> {
  const lab = labClient();
  if (!lab) return;
  try {
    const list = await lab.runs();
    set((s) => ({ list, picked: s.picked.filter((id) => list.runs.some((r) => r.id === id)) }));
  } catch (error) {
    set({ notice: messageOf(error) });
  }
}

async function act(work: () => Promise<void>): Promise<void> {
  set({ busy: true, notice: null });
  try {
    await work();
  } catch (error) {
    set({ notice: messageOf(error) });
  } finally {
    set({ busy: false });
    await refreshRuns();
  }
}

const slug = (name: string) => name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 60) || 'run';

/** The current run's log as log.jsonl or CSV (the command line's columns). */
export function downloadRunLog(format: 'jsonl' | 'csv'): Promise<void> {
  return act(async () => {
    const lab = labClient();
    if (!lab) return;
    const { rows, name } = await lab.runLog();
    if (rows.length === 0) throw new Error('The run has no steps logged yet.');
    const text = format === 'jsonl' ? toJsonLines(rows) : toCsv(rows);
    download(new Blob([text], { type: format === 'jsonl' ? 'application/x-ndjson' : 'text/csv' }), `log-${slug(name ?? 'run')}.${format}`);
  });
}

export const renameRun = (id: string, name: string) => act(async () => labClient()?.renameRun(id, name));
/** The saved checkpoint on the Train panel goes too when it was this run's. */
function forgetSavedCheckpoint(id: string) {
  if (useLabStore.getState().savedCheckpoint?.runId === id) useLabStore.setState({ savedCheckpoint: null });
}

export const deleteRun = (id: string) =>
  act(async () => {
    await labClient()?.deleteRun(id);
    forgetSavedCheckpoint(id);
  });

/** Frees a run's checkpoint (storage), keeping its curves, evaluations and config. */
export const dropRunCheckpoint = (id: string) =>
  act(async () => {
    await labClient()?.dropRunCheckpoint(id);
    forgetSavedCheckpoint(id);
  });
export const discardRunEntry = (key: string) => act(async () => labClient()?.discardRunEntry(key));

export function exportRun(id: string, format: 'zip' | 'json'): Promise<void> {
  return act(async () => {
    const out = await labClient()?.exportRun(id, format);
    if (out) download(new Blob([out.bytes as Uint8Array<ArrayBuffer>], { type: format === 'zip' ? 'application/zip' : 'application/json' }), out.fileName);
  });
}

export function importRun(file: File): Promise<void> {
  return act(async () => {
    const summary = await labClient()?.importRun(file.name, new Uint8Array(await file.arrayBuffer()));
    if (summary) set({ notice: `Imported "${summary.name}" (${summary.steps} steps${summary.checkpoint ? ', with its checkpoint' : ', without a checkpoint'}).` });
  });
}

/** Resumes a run of the history: its checkpoint becomes the one to resume, its curves come back, and training continues it. */
export function resumeRun(id: string): Promise<void> {
  return act(async () => {
    const lab = labClient();
    if (!lab || isRunActive(useLabStore.getState().training.status)) return;
    const { info, history } = await lab.chooseRun(id);
    useLabStore.setState({
      savedCheckpoint: info,
      training: { ...initialTraining, history, step: info.step, totalSteps: info.totalSteps, loss: history[history.length - 1]?.values.loss ?? NaN },
    });
    void resumeFromCheckpoint();
  });
}

export function togglePicked(id: string, on: boolean): void {
  set((s) => ({ picked: on ? [...new Set([...s.picked, id])] : s.picked.filter((x) => x !== id), compared: null }));
}

export function compareRuns(): Promise<void> {
  return act(async () => {
    const lab = labClient();
    const ids = useRunsStore.getState().picked;
    if (!lab || ids.length < 2) return;
    set({ compared: await lab.runRecords(ids) });
  });
}

export const closeComparison = () => set({ compared: null });

/** The worker client whose run events this page listens to (a restarted worker is a new one). */
let listening: unknown;

function listen() {
  const lab = labClient();
  if (!lab || listening === lab) return;
  listening = lab;
  void lab.subscribe(
    Comlink.proxy((e: LabEvent) => {
      if (e.type === 'run-saved' || e.type === 'run-eval') void refreshRuns();
    }),
  );
}

/** Refreshes the list when the worker saves a run, or the lab's state says a run changed. Returns the unsubscribe function. */
export function watchRuns(): () => void {
  listen();
  void refreshRuns();
  return useLabStore.subscribe((s, prev) => {
    if (s.backend.status === 'ready') listen();
    const changed =
      (s.backend.status === 'ready' && prev.backend.status !== 'ready') ||
      s.savedCheckpoint !== prev.savedCheckpoint ||
      (s.training.status !== prev.training.status && ['running', 'finished', 'stopped', 'error'].includes(s.training.status)) ||
      (prev.evaluation.running && !s.evaluation.running) ||
      (s.models.student !== prev.models.student && s.models.student.status === 'ready');
    if (changed) void refreshRuns();
  });
}
