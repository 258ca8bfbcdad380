/**
 * The page's only caller of the worker: each action sends plain data to the Lab, then writes what
 * comes back into the store. Training events arrive through a comlink proxy callback. The page
 * keeps the files a person picked (data and models) so that a restarted worker (after a lost GPU
 * device) gets them again; checkpoints and dropped models also live in the worker's IndexedDB.
 */
import type { MethodConfig } from '../train/config';
import { withRepairRecipe } from '../train/repair-recipe';
import { BACKEND_ORDER, type BackendName } from '../worker/backend-types';
import { startLabWorker, type LabClient } from '../worker/client';
import type { DataInput, DeriveRequest, EvalTarget, LabEvent, LabExperiment, ModelRole, NamedBytes, TrainUpdate } from '../worker/lab';
import { initialTraining, isRunActive, useLabStore, type LabState, type TrainingState, type TrainStatus } from './store';

export const MIN_SCORE_THRESHOLD = 0.05;
/** Loss points kept for the curves; older ones are thinned to every other point. */
const MAX_POINTS = 4000;

let lab: LabClient | undefined;
let worker: Worker | undefined;
let detectionRun = 0;
let dataInput: DataInput | undefined;
/** The photos without annotations, kept so a restarted worker gets them again. */
let photosInput: DataInput | undefined;
const droppedModels: Partial<Record<ModelRole, NamedBytes[]>> = {};

/** The worker's façade, for the page's other modules (the run history); undefined before boot. */
export const labClient = (): LabClient | undefined => lab;

const set = useLabStore.setState;
const get = useLabStore.getState;
export const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error)).replace(/^Error: /, '');

/** Backend order from `?backend=wasm` or `?backend=webgl,wasm`, else the default. */
export function backendOrderFromQuery(search: string): BackendName[] {
  const requested = new URLSearchParams(search).get('backend');
  if (!requested) return [...BACKEND_ORDER];
  const names = requested.split(',').map((s) => s.trim()) as BackendName[];
  const valid = names.filter((n) => BACKEND_ORDER.includes(n));
  return valid.length > 0 ? valid : [...BACKEND_ORDER];
}

function markModelChanged(state: LabState['inspect'], role: ModelRole): LabState['inspect'] {
  return state.result.status === 'ready' ? { ...state, weightsChanged: `another ${role} was loaded since` } : state;
}

const BACKEND_KEY = 'distill-lab:backend';

/** How the backend was asked for: the address (?backend=), a choice in the backend panel, or automatically. */
export interface BackendRequest {
  source: 'url' | 'choice' | 'auto';
  order: BackendName[];
  /** A backend named by the person runs even on a software renderer. */
  allowSoftware: boolean;
  /** What was asked, in words ("?backend=wasm", "webgpu"). */
  label: string;
}

/** The backend request from the address, else the choice kept in this browser, else automatic. */
export function backendRequest(search: string, stored: string | null): BackendRequest {
  const requested = new URLSearchParams(search).get('backend');
  // A ?backend= that names no backend forces nothing.
  if (requested && requested.split(',').some((n) => BACKEND_ORDER.includes(n.trim() as BackendName))) {
    const order = backendOrderFromQuery(search);
    return { source: 'url', order, allowSoftware: true, label: `?backend=${requested}` };
  }
  const choice = BACKEND_ORDER.find((b) => b === stored);
  if (choice) return { source: 'choice', order: [choice, ...BACKEND_ORDER.filter((b) => b !== choice)], allowSoftware: true, label: choice };
  return { source: 'auto', order: [...BACKEND_ORDER], allowSoftware: false, label: 'automatic' };
}

function patchTraining(patch: Partial<TrainingState>) {
  set((s) => ({ training: { ...s.training, ...patch } }));
}

/** The next curve history after one step event. */
export function appendPoint(history: LabState['training']['history'], step: number, loss: number, terms: Record<string, number>) {
  const next = [...history.filter((p) => p.step < step), { step, values: { loss, ...terms } }];
  return next.length > MAX_POINTS ? next.filter((_, i) => i % 2 === 0 || i >= next.length - MAX_POINTS / 2) : next;
}

/**
 * The status a run's event may set. The worker sends the run's events through the listener's own
 * channel and the run's end (its result or error) through the worker's, and two channels keep no
 * order between them: a 'started' or a 'run-state' can arrive after the run has ended (a first
 * step that fails at once), and must not bring the ended run back to life over its error.
 */
export function eventStatus(current: TrainStatus, next: TrainStatus): TrainStatus {
  return isRunActive(current) ? next : current;
}

function onTrainEvent(e: TrainUpdate) {
  if (e.type === 'started') {
    set((s) => {
      const live = isRunActive(s.training.status);
      return { training: { ...s.training, status: eventStatus(s.training.status, 'running'), step: e.step, totalSteps: e.totalSteps, stepsPerEpoch: e.stepsPerEpoch, error: live ? null : s.training.error } };
    });
  }
  else if (e.type === 'step') {
    set((s) => ({
      training: {
        ...s.training,
        step: e.step,
        totalSteps: e.totalSteps,
        stepsPerEpoch: e.stepsPerEpoch,
        epoch: e.epoch,
        lr: e.lr,
        loss: e.loss,
        gradNorm: e.gradNorm,
        pseudoBoxes: s.training.pseudoBoxes + e.pseudoBoxes,
        teacherCache: e.teacherCache ?? null,
        imagesPerSecond: e.imagesPerSecond,
        stepsSeen: s.training.stepsSeen + 1,
        msPerStep: e.msPerStep,
        etaSeconds: e.etaSeconds,
        skipped: e.applied ? s.training.skipped : [...s.training.skipped, { step: e.step, terms: e.nonFiniteTerms }],
        // Measured before the step's update: it belongs to the weights of step - 1.
        gradientNorms: e.gradientNorms ? [...s.training.gradientNorms, { step: e.step - 1, norms: e.gradientNorms }].slice(-200) : s.training.gradientNorms,
        history: appendPoint(s.training.history, e.step, e.loss, e.terms),
      },
      inspect: s.inspect.result.status === 'ready' ? { ...s.inspect, weightsChanged: `the student has trained since (now step ${e.step})` } : s.inspect,
    }));
  } else if (e.type === 'finished') patchTraining({ status: e.stopped ? 'stopped' : 'finished', step: e.step });
}

function onEvent(event: LabEvent) {
  if (event.type === 'device-lost') set({ deviceLost: event.message });
  else if (event.type === 'train') onTrainEvent(event.event);
  else if (event.type === 'run-state') set((s) => ({ training: { ...s.training, status: eventStatus(s.training.status, event.state) } }));
  else if (event.type === 'checkpoint-saved') set({ savedCheckpoint: event.info });
  else if (event.type === 'derive-progress') set((s) => ({ derivation: { ...s.derivation, progress: { stage: event.stage, done: event.done, total: event.total } } }));
  else if (event.type === 'eval-progress') set((s) => ({ evaluation: { ...s.evaluation, progress: { target: event.target, done: event.done, total: event.total } } }));
}

/** Starts the worker, picks the backend, loads the models (dropped ones saved before a reload, else the defaults). */
export async function boot(): Promise<void> {
  if (lab) return; // React's StrictMode runs effects twice in development.
  ({ lab, worker } = startLabWorker(onEvent));
  const request = backendRequest(location.search, localStorage.getItem(BACKEND_KEY));
  set({ backend: { status: 'loading', detail: 'choosing a backend' }, backendRequest: request });
  try {
    const report = await lab.init(request.order, { allowSoftware: request.allowSoftware });
    set({ backend: { status: 'ready', value: report } });
  } catch (error) {
    set({ backend: { status: 'error', error: messageOf(error) } });
    return;
  }
  const [methods, defaults, stored] = await Promise.all([lab.methods(), lab.defaultExperiment(), lab.stored()]);
  const config = (await restoreConfig(lab)) ?? defaults;
  set((s) => ({
    methods,
    config: s.config ?? config,
    savedCheckpoint: stored.checkpoint,
    persistent: stored.persistent,
    // After a reload the saved run's curves come back with its checkpoint.
    training:
      s.training.status === 'idle' && stored.checkpoint
        ? {
            ...s.training,
            history: stored.history,
            step: stored.checkpoint.step,
            totalSteps: stored.checkpoint.totalSteps,
            loss: stored.history[stored.history.length - 1]?.values.loss ?? NaN,
          }
        : s.training,
  }));
  for (const role of ['teacher', 'student'] as const) {
    const files = droppedModels[role];
    const spec = files ? { kind: 'files' as const, files } : (role === 'teacher' ? stored.teacherFiles : stored.studentFiles) ? { kind: 'stored' as const } : { kind: 'default' as const };
    await loadModel(role, spec);
  }
  if (dataInput) await sendData(dataInput);
  if (photosInput) await sendPhotos(photosInput);
}

async function loadModel(role: ModelRole, spec: Parameters<LabClient['loadModel']>[1]): Promise<void> {
  if (!lab) return;
  const previous = get().models[role];
  set((s) => ({ models: { ...s.models, [role]: { status: 'loading', detail: spec.kind === 'default' ? 'loading the default model' : 'reading the dropped files' } }, modelNotice: { ...s.modelNotice, [role]: null } }));
  try {
    const info = await lab.loadModel(role, spec);
    set((s) => ({ models: { ...s.models, [role]: { status: 'ready', value: info } }, inspect: markModelChanged(s.inspect, role) }));
    if (spec.kind === 'files') droppedModels[role] = spec.files;
    if (spec.kind === 'default') delete droppedModels[role];
    if (role === 'student' && get().data.status === 'ready' && dataInput) await refreshData();
  } catch (error) {
    const message = messageOf(error);
    // A failed drop keeps the model that was there; a failed default load is the card's error.
    if (previous.status === 'ready' && spec.kind === 'files') {
      set((s) => ({ models: { ...s.models, [role]: previous }, modelNotice: { ...s.modelNotice, [role]: message } }));
    } else if (spec.kind === 'stored') {
      set((s) => ({ modelNotice: { ...s.modelNotice, [role]: `The ${role} files saved in this browser could not be loaded (${message}); using the default.` } }));
      await loadModel(role, { kind: 'default' });
      return;
    } else set((s) => ({ models: { ...s.models, [role]: { status: 'error', error: message } } }));
  }
  await refreshPair();
}

async function refreshData() {
  if (!lab) return;
  const c = get().config;
  try {
    const info = await lab.selectSplits({ train: c?.data.trainSplit ?? 'train', val: c?.data.valSplit ?? 'val' });
    set({ data: { status: 'ready', value: info } });
  } catch (error) {
    set({ dataNotice: messageOf(error) });
  }
}

/** A person dropped model files (model.json + weights + manifest, or a .zip) for a role. */
export async function dropModel(role: ModelRole, files: File[]): Promise<void> {
  if (files.length === 0) return;
  const named = await Promise.all(files.map(async (f) => ({ name: f.name, bytes: new Uint8Array(await f.arrayBuffer()) })));
  await loadModel(role, { kind: 'files', files: named });
}

export function loadDefaultModel(role: ModelRole): Promise<void> {
  return loadModel(role, { kind: 'default' });
}

async function refreshPair() {
  if (!lab) return;
  const methods = get().config?.methods ?? [];
  set({ pairProblems: await lab.checkPair(methods) });
}

// ---- data -------------------------------------------------------------------------------------

async function sendData(input: DataInput): Promise<void> {
  if (!lab) return;
  const c = get().config;
  // What was on screen before this load: a failed drop puts it back (the worker kept it too).
  const previous = get().data;
  set({ data: { status: 'loading', detail: 'reading annotations' }, dataNotice: null });
  try {
    const info = await lab.loadData(input, { train: c?.data.trainSplit ?? 'train', val: c?.data.valSplit ?? 'val' });
    dataInput = input;
    set((s) => ({
      data: { status: 'ready', value: info },
      config: s.config && { ...s.config, data: { ...s.config.data, source: info.label, trainSplit: info.train.split, valSplit: info.val.split } },
      inspect: { ...s.inspect, split: 'train', imageId: info.train.images[0]?.id ?? null, result: { status: 'idle' } },
      evaluation: { running: false, progress: null, reports: {}, error: null },
    }));
    keepConfig(get().config);
  } catch (error) {
    const kept = previous.status === 'ready' && dataInput !== undefined;
    set({ data: kept ? previous : { status: 'error', error: messageOf(error) }, dataNotice: messageOf(error) });
  }
}

/** The files of a folder picked with <input webkitdirectory>. */
export function loadDataFolder(files: File[]): Promise<void> {
  if (files.length === 0) return Promise.resolve();
  const paths = files.map((f) => f.webkitRelativePath || f.name);
  return sendData({ kind: 'files', files, paths });
}

/** A dropped .zip / .tar / .tar.gz of a VOC folder. */
export async function loadDataArchive(file: File): Promise<void> {
  return sendData({ kind: 'archive', name: file.name, bytes: new Uint8Array(await file.arrayBuffer()) });
}

async function sendPhotos(input: DataInput): Promise<void> {
  if (!lab) return;
  const previous = get().photos;
  set({ photos: { status: 'loading', detail: 'listing the photos' }, photosNotice: null });
  try {
    const info = await lab.loadPhotos(input);
    photosInput = input;
    set({ photos: { status: 'ready', value: info } });
  } catch (error) {
    set({ photos: previous.status === 'loading' ? { status: 'idle' } : previous, photosNotice: messageOf(error) });
  }
}

/** A picked folder of photos without annotations. */
export function loadPhotosFolder(files: File[]): Promise<void> {
  if (files.length === 0) return Promise.resolve();
  return sendPhotos({ kind: 'files', files, paths: files.map((f) => f.webkitRelativePath || f.name) });
}

/** A .zip / .tar of photos without annotations. */
export async function loadPhotosArchive(file: File): Promise<void> {
  return sendPhotos({ kind: 'archive', name: file.name, bytes: new Uint8Array(await file.arrayBuffer()) });
}

export async function clearPhotos(): Promise<void> {
  if (!lab) return;
  try {
    await lab.clearPhotos();
    photosInput = undefined;
    set({ photos: { status: 'idle' }, photosNotice: null });
  } catch (error) {
    set({ photosNotice: messageOf(error) });
  }
}

export async function setSplits(train: string, val: string): Promise<void> {
  if (!lab) return;
  set((s) => ({ config: s.config && { ...s.config, data: { ...s.config.data, trainSplit: train, valSplit: val } }, dataNotice: null }));
  keepConfig(get().config);
  set({ data: { status: 'loading', detail: `loading splits ${train} and ${val}` } });
  await refreshData();
  set((s) => ({ evaluation: { ...s.evaluation, reports: {}, diagnosis: null }, inspect: { ...s.inspect, result: { status: 'idle' } } }));
}

// ---- config -----------------------------------------------------------------------------------

const CONFIG_KEY = 'distill-lab:experiment';

/** The experiment as last edited on this browser (kept across reloads), if it still parses. */
async function restoreConfig(client: LabClient): Promise<LabExperiment | undefined> {
  const text = localStorage.getItem(CONFIG_KEY);
  if (!text) return undefined;
  try {
    return await client.parseExperiment(text, 'the saved experiment');
  } catch {
    localStorage.removeItem(CONFIG_KEY);
    return undefined;
  }
}

function keepConfig(config: LabExperiment | null) {
  if (config) localStorage.setItem(CONFIG_KEY, JSON.stringify(config));
}

export function updateConfig(update: (c: LabExperiment) => LabExperiment): void {
  const c = get().config;
  if (!c) return;
  const next = update(c);
  set({ config: next, configNotice: null });
  keepConfig(next);
  void refreshPair();
}

export function setMethodEnabled(id: string, enabled: boolean): void {
  updateConfig((c) => {
    const rest = c.methods.filter((m) => m.id !== id);
    return { ...c, methods: enabled ? [...rest, { id: id as MethodConfig['id'] }] : rest };
  });
}

export function setMethodParam(id: string, key: string, value: unknown): void {
  updateConfig((c) => ({ ...c, methods: c.methods.map((m) => (m.id === id ? { ...m, params: { ...m.params, [key]: value } } : m)) }));
}

export function setMethodScale(id: string, scale: number): void {
  updateConfig((c) => ({ ...c, methods: c.methods.map((m) => (m.id === id ? { ...m, scale } : m)) }));
}

export function saveConfigFile(): void {
  const c = get().config;
  if (!c) return;
  const t = get().models;
  const named = {
    ...c,
    teacher: t.teacher.status === 'ready' ? t.teacher.value.manifestName : c.teacher,
    student: t.student.status === 'ready' ? t.student.value.manifestName : c.student,
  };
  download(new Blob([JSON.stringify(named, null, 2)], { type: 'application/json' }), 'experiment.json');
}

export async function loadConfigFile(file: File): Promise<void> {
  if (!lab) return;
  try {
    const config = await lab.parseExperiment(await file.text(), file.name);
    const before = get().config;
    set({ config: { ...config, lab: config.lab ?? before?.lab }, configNotice: `Loaded ${file.name}.` });
    keepConfig(get().config);
    await refreshPair();
    const d = get().data;
    if (d.status === 'ready' && (d.value.train.split !== config.data.trainSplit || d.value.val.split !== config.data.valSplit)) {
      await setSplits(config.data.trainSplit, config.data.valSplit);
    }
  } catch (error) {
    set({ configNotice: messageOf(error) });
  }
}

/** Saves a blob as a file through a temporary link. */
export function download(blob: Blob, name: string) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 30_000);
}

// ---- training ---------------------------------------------------------------------------------

async function runTraining(resume: boolean): Promise<void> {
  const c = get().config;
  if (!lab || !c || isRunActive(get().training.status)) return;
  const saved = get().savedCheckpoint;
  set((s) => ({
    // A new run keeps the curves of the run it replaces on the charts, for comparison.
    previousRun:
      !resume && s.training.history.length > 0
        ? { history: s.training.history, label: `previous run (steps ${s.training.history[0]!.step}–${s.training.history[s.training.history.length - 1]!.step})` }
        : s.previousRun,
    training: {
      ...initialTraining,
      status: 'starting',
      shape: resume && saved ? { batchSize: saved.config.schedule.batchSize, inputSize: saved.config.schedule.inputSize } : { batchSize: c.schedule.batchSize, inputSize: c.schedule.inputSize },
      // Resuming continues the curves of the run it continues.
      history: resume ? s.training.history.filter((p) => p.step <= (saved?.step ?? 0)) : [],
      skipped: resume ? s.training.skipped : [],
    },
  }));
  try {
    const result = await lab.train(c, { resume });
    patchTraining({ status: result.stopped ? 'stopped' : 'finished', step: result.step });
  } catch (error) {
    patchTraining({ status: 'error', error: messageOf(error) });
  }
}

export const startTraining = () => runTraining(false);
export const resumeFromCheckpoint = () => runTraining(true);
export const pauseTraining = () => void lab?.pause();
export const resumeTraining = () => void lab?.resume();
export const stopTraining = () => void lab?.stop();

export async function discardCheckpoint(): Promise<void> {
  await lab?.discardCheckpoint();
  set({ savedCheckpoint: null });
}

/** After a lost GPU device: a new worker gets a new device; models, data and the checkpoint come back. */
export async function restartWorker(): Promise<void> {
  worker?.terminate();
  lab = undefined;
  worker = undefined;
  set((s) => ({
    deviceLost: null,
    models: { teacher: { status: 'idle' }, student: { status: 'idle' } },
    training: { ...s.training, status: isRunActive(s.training.status) ? 'error' : s.training.status },
  }));
  await boot();
}

/**
 * The person picks a backend in the panel ('auto' lets the lab choose): kept in this browser, it
 * replaces a ?backend= of the address, and the compute worker restarts on it (models, data and
 * the checkpoint come back; weights trained since the last checkpoint do not).
 */
export async function switchBackend(choice: BackendName | 'auto'): Promise<void> {
  if (isRunActive(get().training.status)) return;
  if (choice === 'auto') localStorage.removeItem(BACKEND_KEY);
  else localStorage.setItem(BACKEND_KEY, choice);
  const url = new URL(location.href);
  if (url.searchParams.has('backend')) {
    url.searchParams.delete('backend');
    history.replaceState(null, '', url);
  }
  await restartWorker();
}

/** For the end-to-end test of the recovery path. */
export function loseDeviceForTest(): Promise<void> {
  return lab ? lab.loseDevice() : Promise.resolve();
}

// ---- inspection, evaluation, export -----------------------------------------------------------

export function setSharedScale(sharedScale: boolean): void {
  set((s) => ({ inspect: { ...s.inspect, sharedScale } }));
}

export function setInspectThreshold(scoreThreshold: number): void {
  set((s) => ({ inspect: { ...s.inspect, scoreThreshold } }));
}

export function selectInspectImage(split: 'train' | 'val', imageId: string | null, ldObject = 0): void {
  set((s) => ({ inspect: { ...s.inspect, split, imageId, ldObject } }));
}

export async function inspect(): Promise<void> {
  const { config, inspect: state } = get();
  if (!lab || !config || !state.imageId) return;
  const { split, imageId, ldObject, scoreThreshold } = state;
  set((s) => ({ inspect: { ...s.inspect, result: { status: 'loading', detail: `running teacher and student on ${imageId}` } } }));
  try {
    const [result, bytes] = await Promise.all([lab.inspect(split, imageId, config, { ldObject, scoreThreshold }), lab.imageBytes(split, imageId)]);
    const old = get().inspect.imageUrl;
    if (old) URL.revokeObjectURL(old);
    const imageUrl = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>]));
    set((s) => ({ inspect: { ...s.inspect, imageUrl, result: { status: 'ready', value: result }, weightsChanged: null } }));
  } catch (error) {
    set((s) => ({ inspect: { ...s.inspect, result: { status: 'error', error: messageOf(error) } } }));
  }
}

export async function evaluate(targets: EvalTarget[]): Promise<void> {
  const config = get().config;
  if (!lab || !config) return;
  set((s) => ({ evaluation: { ...s.evaluation, running: true, progress: null, error: null } }));
  try {
    const reports = await lab.evaluate(targets, config);
    set((s) => ({ evaluation: { running: false, progress: null, reports: { ...s.evaluation.reports, ...reports }, error: null } }));
  } catch (error) {
    set((s) => ({ evaluation: { ...s.evaluation, running: false, progress: null, error: messageOf(error) } }));
  }
}

/** Where the student now loses to the teacher: five evaluation passes (src/eval/head-swap.ts). */
export async function diagnose(): Promise<void> {
  const config = get().config;
  if (!lab || !config) return;
  set((s) => ({ evaluation: { ...s.evaluation, running: true, progress: null, error: null } }));
  try {
    const diagnosis = await lab.diagnose(config);
    set((s) => ({ evaluation: { ...s.evaluation, running: false, progress: null, diagnosis, error: null } }));
  } catch (error) {
    set((s) => ({ evaluation: { ...s.evaluation, running: false, progress: null, error: messageOf(error) } }));
  }
}

/** Derives a smaller student from the teacher on the loaded photos; the student it replaces stays if it fails. */
export async function deriveStudent(request: DeriveRequest): Promise<void> {
  if (!lab) return;
  set((s) => ({ derivation: { ...s.derivation, running: true, progress: null, error: null } }));
  try {
    const { info, summary } = await lab.deriveStudent(request);
    set((s) => ({ models: { ...s.models, student: { status: 'ready', value: info } }, inspect: markModelChanged(s.inspect, 'student'), derivation: { running: false, progress: null, summary, error: null }, evaluation: { ...s.evaluation, reports: {}, diagnosis: null } }));
    delete droppedModels.student;
    // A derived student is repaired with the recipe measured for it (src/train/config.ts), beside the photos it came from.
    updateConfig(withRepairRecipe);
    if (get().data.status === 'ready' && dataInput) await refreshData();
  } catch (error) {
    set((s) => ({ derivation: { ...s.derivation, running: false, progress: null, error: messageOf(error) } }));
  }
  await refreshPair();
}

export async function exportStudent(precision: 'float32' | 'float16'): Promise<void> {
  if (!lab) return;
  set({ exporting: { status: 'loading', detail: `writing ${precision} weights` } });
  try {
    const out = await lab.exportStudent(precision);
    download(new Blob([out.zip as Uint8Array<ArrayBuffer>], { type: 'application/zip' }), out.fileName);
    set({ exporting: { status: 'ready', value: { fileName: out.fileName, bytes: out.zip.byteLength, name: out.name } } });
  } catch (error) {
    set({ exporting: { status: 'error', error: messageOf(error) } });
  }
}

// ---- the quick look ---------------------------------------------------------------------------

/**
 * Runs a model on a photo the person picked. The new image replaces the old one only once
 * the worker has decoded it; a broken file leaves the screen as it was, with a notice.
 */
export async function detectFile(file: File, role: ModelRole = 'teacher'): Promise<void> {
  if (!lab) return;
  if (!file.type.startsWith('image/') && !/\.(jpe?g|png|webp|gif|bmp)$/i.test(file.name)) {
    set({ notice: `"${file.name}" is not an image file. Pick a JPEG, PNG or WebP photo.` });
    return;
  }
  const run = ++detectionRun;
  const previous = get();
  set({ detections: { status: 'loading', detail: `detecting objects in ${file.name}` }, notice: null });
  try {
    // Detect down to the slider's floor; the slider then filters on the page without a rerun
    // (per-class greedy NMS commutes with a score cut: kept boxes only depend on higher scores).
    const result = await lab.detect(role, file, file.name, { scoreThreshold: MIN_SCORE_THRESHOLD });
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
