/**
 * The model card: how an exported student was made, as plain JSON (model-card.json) and as
 * Markdown (MODEL_CARD.md). One pure function builds it from plain data; the lab's worker and the
 * command line gather that data (the teacher's weight hash, the student's manifest, the run's
 * config, the data's ids, the evaluations) and call it, so both write the same card.
 */
import type { ModelManifest } from '../models/manifest';
import type { ExperimentConfig, ScheduleConfig } from '../train/config';
import { idListSha256 } from './sha256';

export const MODEL_CARD_VERSION = 1;
export const MODEL_CARD_FILE = 'model-card.json';
export const MODEL_CARD_MARKDOWN = 'MODEL_CARD.md';
/** Key of the card inside an exported model.json's userDefinedMetadata. */
export const MODEL_CARD_METADATA_KEY = 'distillLabModelCard';

/** A method as the registry describes it: its id, title and paper defaults. */
export interface MethodCatalogEntry {
  id: string;
  title: string;
  defaults: object;
}

/** A method as it ran: every parameter (defaults merged with the run's overrides) and its scale. */
export interface MethodUsed {
  id: string;
  title: string;
  scale: number;
  params: Record<string, unknown>;
  /** The parameters the run set, that differ from the paper's defaults. */
  overrides: string[];
}

export interface SplitProvenance {
  name: string;
  images: number;
  /** sha256 of the split's image ids, sorted, one per line. */
  idsSha256: string;
}

export interface DataProvenance {
  source: string;
  train: SplitProvenance | null;
  val: SplitProvenance | null;
  unlabeledPhotos: number;
  unlabeledSource?: string;
}

export interface DerivationProvenance {
  from: string;
  classes: number;
  prunedConvs: number;
  channelsKept: number;
  channelsTotal: number;
  removedBlocks: number;
  replacedBlocks: number;
  calibration: { images: number; inputSize: number; sha256: string | null; source: string | null } | null;
  macsFraction: number | null;
}

/** One evaluation, as the card keeps it (percent is left to the reader: values in [0, 1]). */
export interface ScoreProvenance {
  mapAll: number | null;
  map11: number | null;
  cocoAp: number | null;
  images: number;
  /** Training steps the evaluated weights had. */
  step?: number;
}

export interface ModelCardData {
  modelCardVersion: 1;
  createdAt: string;
  projectVersion: string;
  model: { name: string; parameters: number; macs: number; inputSize: number; weightPrecision: string; classes: number };
  teacher: { name: string; weightsSha256: string | null };
  student: { name: string; weightsSha256: string | null; derivation: DerivationProvenance | null };
  training: {
    steps: number;
    backend: string;
    detectionWeight: number | null;
    methods: MethodUsed[];
    schedule: ScheduleConfig | null;
    gradientNormsEvery: number | null;
  };
  data: DataProvenance | null;
  evaluation: { split: string | null; inputSize: number | null; teacher: ScoreProvenance | null; before: ScoreProvenance | null; after: ScoreProvenance | null };
}

/** What the card is built from: plain data only. */
export interface ModelCardInput {
  createdAt: string;
  projectVersion: string;
  model: { name: string; parameters: number; macs: number; inputSize: number; weightPrecision: string };
  teacher: { name: string; weightsSha256: string | null };
  /** The student's manifest as it started training (its derivedFrom says how it was made). */
  student: { manifest: ModelManifest; weightsSha256: string | null };
  /** The run that trained the weights (null: not trained here). */
  config: ExperimentConfig | null;
  methodCatalog: readonly MethodCatalogEntry[];
  steps: number;
  backend: string;
  data: DataInput | null;
  evaluation?: { split?: string; inputSize?: number; teacher?: ScoreLike | null; before?: ScoreLike | null; after?: ScoreLike | null };
}

export interface DataInput {
  source: string;
  train?: { name: string; ids: readonly string[] } | null;
  val?: { name: string; ids: readonly string[] } | null;
  unlabeledPhotos?: number;
  unlabeledSource?: string;
}

/** What an evaluation report has that the card keeps. */
export interface ScoreLike {
  mapAll: number | null;
  map11: number | null;
  coco: { ap: number | null };
  counts: { images: number };
  step?: number;
}

/** Every method of a config with its full parameters: the paper defaults merged with the config's overrides. */
export function methodsUsed(methods: ExperimentConfig['methods'], catalog: readonly MethodCatalogEntry[]): MethodUsed[] {
  return methods.map((m) => {
    const entry = catalog.find((c) => c.id === m.id);
    const defaults = (entry?.defaults ?? {}) as Record<string, unknown>;
    const params = { ...structuredClone(defaults), ...structuredClone(m.params ?? {}) };
    const overrides = Object.keys(m.params ?? {}).filter((k) => JSON.stringify(m.params![k]) !== JSON.stringify(defaults[k]));
    return { id: m.id, title: entry?.title ?? m.id, scale: m.scale ?? 1, params, overrides };
  });
}

/** How a derived student was made, summarised from its manifest (null for a model not derived). */
export function derivationOf(manifest: ModelManifest): DerivationProvenance | null {
  const d = manifest.derivedFrom;
  if (!d) return null;
  const pruned = d.prunedChannels ?? [];
  return {
    from: d.model,
    classes: manifest.classes.length,
    prunedConvs: pruned.filter((p) => p.kept < p.channels).length,
    channelsKept: pruned.reduce((n, p) => n + p.kept, 0),
    channelsTotal: pruned.reduce((n, p) => n + p.channels, 0),
    removedBlocks: d.removedBlocks?.length ?? 0,
    replacedBlocks: d.replacedBlocks?.length ?? 0,
    calibration: d.calibration ? { images: d.calibration.images, inputSize: d.calibration.inputSize, sha256: d.calibration.sha256 ?? null, source: d.calibration.source ?? null } : null,
    macsFraction: d.macsFraction ?? null,
  };
}

/** The data a run saw: source, splits with their image counts and id hashes, unlabelled photos. */
export function dataProvenance(d: DataInput): DataProvenance {
  const split = (s: { name: string; ids: readonly string[] } | null | undefined): SplitProvenance | null =>
    s ? { name: s.name, images: s.ids.length, idsSha256: idListSha256(s.ids) } : null;
  return { source: d.source, train: split(d.train), val: split(d.val), unlabeledPhotos: d.unlabeledPhotos ?? 0, ...(d.unlabeledSource ? { unlabeledSource: d.unlabeledSource } : {}) };
}

const score = (s: ScoreLike | null | undefined): ScoreProvenance | null =>
  s ? { mapAll: s.mapAll, map11: s.map11, cocoAp: s.coco.ap, images: s.counts.images, ...(s.step !== undefined ? { step: s.step } : {}) } : null;

export function buildModelCard(input: ModelCardInput): ModelCardData {
  const c = input.config;
  const e = input.evaluation ?? {};
  return {
    modelCardVersion: MODEL_CARD_VERSION,
    createdAt: input.createdAt,
    projectVersion: input.projectVersion,
    model: { ...input.model, classes: input.student.manifest.classes.length },
    teacher: { name: input.teacher.name, weightsSha256: input.teacher.weightsSha256 },
    student: { name: input.student.manifest.name, weightsSha256: input.student.weightsSha256, derivation: derivationOf(input.student.manifest) },
    training: {
      steps: input.steps,
      backend: input.backend,
      detectionWeight: c ? c.detectionWeight : null,
      methods: c ? methodsUsed(c.methods, input.methodCatalog) : [],
      schedule: c ? { ...c.schedule } : null,
      gradientNormsEvery: c?.gradientNormsEvery ?? null,
    },
    data: input.data ? dataProvenance(input.data) : null,
    evaluation: { split: e.split ?? null, inputSize: e.inputSize ?? null, teacher: score(e.teacher), before: score(e.before), after: score(e.after) },
  };
}

/** Checks that a JSON value is a model card this version reads; null when it is not one. */
export function parseModelCard(value: unknown): ModelCardData | null {
  if (typeof value !== 'object' || value === null) return null;
  const v = value as Partial<ModelCardData>;
  if (v.modelCardVersion !== MODEL_CARD_VERSION || typeof v.teacher !== 'object' || typeof v.training !== 'object' || typeof v.model !== 'object') return null;
  return value as ModelCardData;
}

const pct = (x: number | null | undefined) => (x === null || x === undefined ? 'n/a' : `${(100 * x).toFixed(1)}`);
const short = (h: string | null | undefined) => (h ? h.slice(0, 16) : 'n/a');

/** One line per fact, for the page: label and value (the Markdown and the lab's section read the same list). */
export function modelCardFacts(card: ModelCardData): { section: string; rows: [string, string][] }[] {
  const t = card.training;
  const d = card.student.derivation;
  const s = t.schedule;
  const out: { section: string; rows: [string, string][] }[] = [];
  out.push({
    section: 'Model',
    rows: [
      ['name', card.model.name],
      ['parameters, MACs', `${card.model.parameters.toLocaleString('en-US')}, ${card.model.macs.toLocaleString('en-US')} at ${card.model.inputSize}²`],
      ['classes', String(card.model.classes)],
      ['weights', card.model.weightPrecision],
      ['made with', `distill-lab ${card.projectVersion}, ${card.createdAt}`],
    ],
  });
  out.push({ section: 'Teacher', rows: [['name', card.teacher.name], ['weights sha256', card.teacher.weightsSha256 ?? 'n/a']] });
  const studentRows: [string, string][] = [
    ['started from', card.student.name],
    ['its weights sha256', card.student.weightsSha256 ?? 'n/a'],
  ];
  if (d) {
    studentRows.push(['derived from', d.from]);
    if (d.channelsTotal > 0) studentRows.push(['pruned channels', `${d.prunedConvs} convs pruned; ${d.channelsKept.toLocaleString('en-US')} of ${d.channelsTotal.toLocaleString('en-US')} channels kept`]);
    if (d.removedBlocks || d.replacedBlocks) studentRows.push(['blocks', `${d.removedBlocks} removed, ${d.replacedBlocks} replaced by a fitted 1x1 conv`]);
    if (d.calibration) studentRows.push(['calibration photos', `${d.calibration.images} at ${d.calibration.inputSize}², sha256 ${d.calibration.sha256 ?? 'n/a'}${d.calibration.source ? ` (${d.calibration.source})` : ''}`]);
    if (d.macsFraction !== null) studentRows.push(['MACs of the teacher', `${(100 * d.macsFraction).toFixed(1)}%`]);
  } else studentRows.push(['derivation', 'not derived here (as loaded)']);
  out.push({ section: 'Student', rows: studentRows });
  const trainRows: [string, string][] = [
    ['steps', String(t.steps)],
    ['backend', t.backend],
  ];
  if (t.detectionWeight !== null) trainRows.push(['detection loss weight', String(t.detectionWeight)]);
  trainRows.push(['methods', t.methods.length ? t.methods.map((m) => m.id).join(' + ') : t.steps > 0 ? 'plain fine-tuning' : 'none']);
  for (const m of t.methods) trainRows.push([`${m.title}${m.scale !== 1 ? ` ×${m.scale}` : ''}`, Object.entries(m.params).map(([k, v]) => `${k}=${JSON.stringify(v)}${m.overrides.includes(k) ? '*' : ''}`).join(', ')]);
  if (s) {
    trainRows.push(['schedule', `${s.epochs} epochs, batch ${s.batchSize}, ${s.inputSize}², ${s.optimizer} lr ${s.lr} (warm-up ${s.warmupSteps}), momentum ${s.momentum}, weight decay ${s.weightDecay}, clip ${s.clipNorm}, flip ${s.flipProbability}${s.cropScale !== undefined && s.cropScale < 1 ? `, random crops of sides ${s.cropScale}–1` : ''}, seed ${s.seed}`]);
  }
  out.push({ section: 'Training', rows: trainRows });
  if (card.data) {
    const split = (x: SplitProvenance | null) => (x ? `${x.name}: ${x.images} images, ids sha256 ${x.idsSha256}` : 'none');
    out.push({
      section: 'Data',
      rows: [
        ['source', card.data.source],
        ['trained on', split(card.data.train)],
        ['evaluated on', split(card.data.val)],
        ['unlabelled photos', `${card.data.unlabeledPhotos}${card.data.unlabeledSource ? ` (${card.data.unlabeledSource})` : ''}`],
      ],
    });
  }
  const ev = card.evaluation;
  const line = (x: ScoreProvenance | null) => (x ? `${pct(x.mapAll)} mAP (all-point), ${pct(x.map11)} VOC07, COCO AP ${pct(x.cocoAp)}, ${x.images} images${x.step !== undefined ? `, step ${x.step}` : ''}` : 'not measured');
  out.push({
    section: 'Evaluation',
    rows: [
      ['on', ev.split ? `${ev.split}${ev.inputSize ? ` at ${ev.inputSize}²` : ''}` : 'not measured'],
      ['teacher', line(ev.teacher)],
      ['student before', line(ev.before)],
      ['student after', line(ev.after)],
    ],
  });
  return out;
}

/** MODEL_CARD.md: the same facts for people. */
export function modelCardMarkdown(card: ModelCardData): string {
  const lines = [`# Model card: ${card.model.name}`, '', `How this model was made (distill-lab ${card.projectVersion}, ${card.createdAt}). Parameters marked * differ from the paper defaults.`, ''];
  for (const { section, rows } of modelCardFacts(card)) {
    lines.push(`## ${section}`, '', '| | |', '|---|---|');
    for (const [k, v] of rows) lines.push(`| ${k} | ${v.replace(/\|/g, '\\|')} |`);
    lines.push('');
  }
  lines.push(`Teacher weights: \`${short(card.teacher.weightsSha256)}…\`. The full record is in model-card.json.`, '');
  return lines.join('\n');
}
