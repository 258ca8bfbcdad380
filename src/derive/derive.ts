/**
 * Deriving a smaller student from a teacher with calibration photos and no labels: cut the head
 * to the dataset's classes, prune convolution channels to a MAC budget, then refit every
 * convolution whose input changed by least squares against the teacher (refit.ts), in graph
 * order. Channels are ranked by how much they feed the convolutions that read them; the refit
 * recovers most of what the removed channels carried.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { RgbImage } from '../data/image';
import { prepareSample, samplesToTensor } from '../data/pipeline';
import { VOC_CLASSES, mapVocClasses } from '../data/voc/classes';
import { exportGraph } from '../graph/export';
import { graphFromArtifacts } from '../graph/load';
import { parseTensorRef, type TfNodeDef } from '../graph/model-json';
import { profileGraph } from '../graph/profile';
import { artifactsFromParts, disposeParts, findRemovableBlocks, keepClasses, partsFromArtifacts, type GraphParts } from '../graph/surgery';
import { cspStages } from '../models/student';
import { replaceBlocksWithConv, type ReplacedBlock } from './replace-blocks';
import type { TrainableGraph } from '../graph/executor';
import type { ModelManifest } from '../models/manifest';
import { analyzeChannels, checkPlan, keptChannelsAt, pruneChannels, type ChannelAnalysis, type ChannelUnit } from './channels';
import { readerStates, selectChannels } from './select';
import { refitConvolutions, topologicalOrder, type RefitReport, type RefitTarget } from './refit';

export interface DeriveOptions {
  /** Target MACs as a fraction of the teacher's (at the teacher's input size), e.g. 0.6. */
  macs: number;
  /** Multipliers of the keep ratio for the channels read by the head's last convs and for all others. */
  headWeight?: number;
  /** Channel counts are multiples of this (and at least this). */
  channelMultiple?: number;
  /** Side of the calibration input (default: the teacher's input size). */
  calibrationSize?: number;
  batchSize?: number;
  rowsPerImage?: number;
  ridge?: number;
  seed?: number;
  /**
   * Also fit, in the head's output convs, every position where the teacher scores an object above
   * this (0: off; the uniform sample alone).
   */
  objectRows?: number;
  /** How many times each such position enters the fit (its weight). */
  objectRepeat?: number;
  /** What the refit's ridge pulls each filter towards: zero (default), or the teacher's own filter at the channels kept. */
  ridgeToward?: 'zero' | 'teacher';
  /** Replace this many trailing blocks of each stage (keeping at least one) by a fitted 1x1 conv. Default 0. */
  replaceBlocks?: number;
  /** Which convs get a least-squares refit: the readers of pruned channels (default; measured best), every conv after the first pruned one, or none. */
  refit?: 'downstream' | 'readers' | 'none';
  /**
   * How the channels each layer keeps are chosen: by the energy each sends into its readers,
   * alone ('energy'), or greedily by how much the readers' least-squares refit loses without it
   * ('refit', which sees that two channels carrying the same signal need only one of them).
   */
  selection?: 'energy' | 'refit';
  /** Keep the dataset's classes (default: the 20 VOC classes when the teacher has them all). */
  classes?: readonly string[];
  /** Where the calibration photos came from, for the manifest. */
  calibrationInfo?: { sha256?: string; source?: string };
  /**
   * Keep exactly these channels (producer conv → ascending channel indices) instead of choosing
   * them on the calibration photos, which then serve the refit alone; the MAC target is then
   * ignored. Units not named keep every channel.
   */
  keep?: ReadonlyMap<string, readonly number[]>;
  /** Smallest calibration set accepted. */
  minImages?: number;
  onProgress?: (stage: string, done: number, total: number) => void;
  signal?: AbortSignal;
}

export interface DerivationReport {
  teacher: { parameters: number; macs: number };
  student: { parameters: number; macs: number };
  /** Channels kept per unit (producer conv → kept/total, and which: `keep`, absent when all are kept). */
  units: { producer: string; kept: number; channels: number; keep?: number[] }[];
  refit: RefitReport[];
  calibration: { images: number; inputSize: number };
  seconds: number;
}

export interface DerivedStudent {
  artifacts: tf.io.ModelArtifacts;
  manifest: ModelManifest;
  report: DerivationReport;
}

/** The default derivation, chosen by measurement (see the README's table of variants). */
export const DEFAULT_DERIVATION = { macs: 0.6, images: 32, headWeight: 1, rowsPerImage: 256, ridge: 1e-2, channelMultiple: 4, replaceBlocks: 0, refit: 'readers', objectRows: 0, objectRepeat: 10, selection: 'energy' } as const;

const round = (v: number, multiple: number, max: number) => Math.min(max, Math.max(multiple, Math.round(v / multiple) * multiple));
const dataInputs = (n: TfNodeDef) => (n.input ?? []).filter((i) => !i.startsWith('^')).map((i) => parseTensorRef(i).node);

/** Channels to keep per unit for one global keep ratio (head units scaled by headWeight). */
function planFor(units: ChannelUnit[], headUnits: Set<string>, ratio: number, headWeight: number, multiple: number): Map<string, number> {
  return new Map(units.map((u) => [u.producer, round(u.channels * Math.min(1, ratio * (headUnits.has(u.producer) ? headWeight : 1)), multiple, u.channels)]));
}

/** MACs per image of every Conv2D for a plan (kept channel counts), from the unpruned shapes. */
function macsOf(parts: GraphParts, analysis: ChannelAnalysis, shapes: Map<string, number[][]>, counts: Map<string, number>): number {
  let total = 0;
  for (const node of parts.topology.node) {
    if (node.op !== 'Conv2D' && node.op !== 'DepthwiseConv2dNative') continue;
    const out = shapes.get(node.name)?.[0];
    const filter = parts.weights[dataInputs(node)[1]!]?.shape;
    if (!out || !filter) continue;
    const [kh, kw, cin, cm] = filter as [number, number, number, number];
    const p = analysis.provenance.get(dataInputs(node)[0]!);
    let keptIn = cin;
    if (p) {
      // Kept channel positions of the input: a unit's channels count by its kept share.
      const perUnit = new Map<string, number>();
      for (const s of p.sources) if (s) perUnit.set(s.unit, (perUnit.get(s.unit) ?? 0) + 1);
      keptIn = p.sources.filter((s) => !s).length;
      for (const [u, n] of perUnit) keptIn += counts.has(u) ? (n * counts.get(u)!) / (analysis.units.find((x) => x.producer === u)?.channels ?? n) : n;
    }
    const spatial = out.length === 4 ? out[1]! * out[2]! : 1;
    total += node.op === 'Conv2D' ? spatial * kh * kw * keptIn * (counts.get(node.name) ?? cm) : spatial * kh * kw * keptIn * cm;
  }
  return total;
}

/** Per-channel mean squares of the nodes' outputs over the calibration batches (channel axis last). */
async function meanSquares(graph: TrainableGraph, nodes: string[], batches: readonly tf.Tensor4D[]): Promise<Map<string, Float64Array>> {
  const sums = new Map<string, Float64Array>();
  let images = 0;
  for (const batch of batches) {
    const outs = graph.execute(batch, nodes);
    const reduced = tf.tidy(() => outs.map((t) => tf.mean(tf.square(t.reshape([-1, t.shape.at(-1)!])), 0)));
    const values = await Promise.all(reduced.map((t) => t.data()));
    nodes.forEach((n, i) => {
      const acc = sums.get(n) ?? new Float64Array(values[i]!.length);
      values[i]!.forEach((v, j) => (acc[j]! += v * batch.shape[0]));
      sums.set(n, acc);
    });
    images += batch.shape[0];
    tf.dispose([...outs, ...reduced]);
  }
  for (const acc of sums.values()) for (let j = 0; j < acc.length; j++) acc[j]! /= images;
  return sums;
}

/** The node right after a conv that adds its per-channel bias, if any. */
function biasAddOf(parts: GraphParts, analysis: ChannelAnalysis, conv: string): { node: string; bias: string } | undefined {
  for (const [bias, { alignedWith }] of analysis.channelConsts) {
    const node = parts.topology.node.find((n) => n.name === alignedWith);
    if (node && dataInputs(node).includes(conv) && /^(Add|AddV2|BiasAdd)$/.test(node.op)) return { node: node.name, bias };
  }
  return undefined;
}

/**
 * Each unit channel's score: the energy it sends into each reader (its mean square on the photos
 * times the reader's filter norm at that input), relative to that reader's output energy, summed
 * over its readers.
 */
async function energyScores(parts: GraphParts, analysis: ChannelAnalysis, graph: TrainableGraph, readers: readonly string[], batches: readonly tf.Tensor4D[]): Promise<Map<string, Float64Array>> {
  const readerInputs = readers.map((c) => dataInputs(parts.topology.node.find((n) => n.name === c)!)[0]!);
  const readerTargets = readers.map((c) => biasAddOf(parts, analysis, c)?.node ?? c);
  const stats = await meanSquares(graph, [...new Set([...readerInputs, ...readerTargets])], batches);
  const scores = new Map(analysis.units.map((u) => [u.producer, new Float64Array(u.channels)]));
  readers.forEach((c, r) => {
    const p = analysis.provenance.get(readerInputs[r]!);
    if (!p) return;
    const filter = parts.weights[dataInputs(parts.topology.node.find((n) => n.name === c)!)[1]!]!;
    const [kh, kw, cin, cout] = filter.shape as number[];
    const w = filter.dataSync();
    const inMsq = stats.get(readerInputs[r]!)!;
    const outMsq = stats.get(readerTargets[r]!)!;
    const outEnergy = outMsq.reduce((a, b) => a + b, 0) / outMsq.length || 1;
    p.sources.forEach((s, i) => {
      if (!s || !scores.has(s.unit)) return;
      let norm = 0;
      for (let k = 0; k < kh! * kw!; k++) for (let o = 0; o < cout!; o++) norm += w[(k * cin! + i) * cout! + o]! ** 2;
      scores.get(s.unit)![s.channel]! += (inMsq[i]! * norm) / outEnergy;
    });
  });
  return scores;
}

/** The `plan`'s count of each unit's channels with the highest scores, ascending; units kept whole are left out. */
function keepByEnergy(units: readonly ChannelUnit[], plan: Map<string, number>, scores: Map<string, Float64Array>): Map<string, number[]> {
  const keep = new Map<string, number[]>();
  for (const u of units) {
    const count = plan.get(u.producer)!;
    if (count >= u.channels) continue;
    const s = scores.get(u.producer)!;
    const ranked = Array.from(s.keys()).sort((a, b) => s[b]! - s[a]! || a - b);
    keep.set(u.producer, ranked.slice(0, count).sort((a, b) => a - b));
  }
  return keep;
}

export function calibrationBatches(images: readonly RgbImage[], manifest: Pick<ModelManifest, 'preprocess' | 'input'>, inputSize: number, batchSize: number): tf.Tensor4D[] {
  const batches: tf.Tensor4D[] = [];
  for (let i = 0; i < images.length; i += batchSize) {
    const samples = images.slice(i, i + batchSize).map((img) => prepareSample(img, [], { inputSize, flip: false }));
    batches.push(samplesToTensor(samples, manifest));
  }
  return batches;
}

export async function deriveStudent(teacher: tf.io.ModelArtifacts, teacherManifest: ModelManifest, images: readonly RgbImage[], options: DeriveOptions): Promise<DerivedStudent> {
  const started = Date.now();
  const d = DEFAULT_DERIVATION;
  const { headWeight = d.headWeight, channelMultiple = d.channelMultiple, batchSize = 8, refit = d.refit, minImages = 8, replaceBlocks = d.replaceBlocks } = options;
  const inputSize = options.calibrationSize ?? teacherManifest.input.size;
  if (!(options.macs > 0 && options.macs <= 1)) throw new Error(`The MAC target must be a fraction in (0, 1], got ${options.macs}.`);
  if (images.length < minImages) throw new Error(`Deriving a student needs at least ${minImages} calibration photos; got ${images.length}. Add more photos (any photos of the kind the detector will see; no labels needed).`);
  const progress = options.onProgress ?? (() => {});

  const classes = options.classes ?? VOC_CLASSES;
  const mapping = mapVocClasses(teacherManifest.classes);
  const classIndices = classes.map((c) => {
    const i = mapping.toModel[c as (typeof VOC_CLASSES)[number]] ?? teacherManifest.classes.indexOf(c);
    if (i === undefined || i < 0) throw new Error(`The teacher has no class "${c}".`);
    return i;
  });

  const teacherGraph = graphFromArtifacts(teacher, { trainable: false });
  const teacherProfile = profileGraph(teacherGraph);
  const outputs = teacherGraph.outputs;
  teacherGraph.dispose();

  const teacherParts = keepClasses(partsFromArtifacts(teacher), { headOutputs: teacherManifest.head.outputs, numClasses: teacherManifest.classes.length, keep: classIndices });
  const reference = graphFromArtifacts(await artifactsFromParts(teacherParts), { trainable: false });
  const batches = calibrationBatches(images, teacherManifest, inputSize, batchSize);
  let student: TrainableGraph | undefined;
  let pruned: GraphParts | undefined;
  let parts = teacherParts;
  let unpruned: TrainableGraph | undefined;
  try {
    // Blocks replaced by fitted 1x1 convs: the last `replaceBlocks` of each stage, keeping one.
    let replaced: ReplacedBlock[] = [];
    if (replaceBlocks > 0) {
      const referenceShapes = reference.nodeShapes();
      const stages = cspStages(findRemovableBlocks(teacherParts, referenceShapes));
      if (stages.length === 0) throw new Error('This teacher has no blocks that can be replaced (no chain of blocks whose input and output shapes agree).');
      const chosen = stages.flatMap((chain) => chain.slice(Math.max(1, chain.length - replaceBlocks)));
      const made = replaceBlocksWithConv(teacherParts, chosen.map((b) => ({ input: b.input, output: b.output, channels: referenceShapes.get(b.output)![0]![1]! })), outputs);
      parts = made.parts;
      replaced = made.replaced;
    }
    unpruned = replaced.length ? graphFromArtifacts(await artifactsFromParts(parts), { trainable: false }) : reference;
    const shapes = unpruned.nodeShapes();
    const analysis = analyzeChannels(parts, shapes, outputs);
    if (analysis.units.length === 0) throw new Error('This teacher has no convolution channels that can be pruned (every conv output feeds a sum, a reshape or an output).');

    const readers = [...new Set(analysis.units.flatMap((u) => u.consumers))];

    // The keep ratio that meets the MAC budget (bisection; MACs grow with the ratio).
    const headConvs = new Set(teacherManifest.head.outputs.flatMap((h) => dataInputs(parts.topology.node.find((n) => n.name === h)!)));
    const headUnits = new Set(analysis.units.filter((u) => u.consumers.some((c) => headConvs.has(c))).map((u) => u.producer));
    const budget = options.macs * teacherProfile.macs;
    const full = macsOf(parts, analysis, shapes, new Map());
    let plan = planFor(analysis.units, headUnits, 1, 1, channelMultiple);
    if (full > budget && !options.keep) {
      let lo = 0;
      let hi = 1;
      for (let i = 0; i < 40; i++) {
        const mid = (lo + hi) / 2;
        if (macsOf(parts, analysis, shapes, planFor(analysis.units, headUnits, mid, headWeight, channelMultiple)) > budget) hi = mid;
        else lo = mid;
      }
      plan = planFor(analysis.units, headUnits, lo, headWeight, channelMultiple);
      if (macsOf(parts, analysis, shapes, plan) > budget) {
        const floor = macsOf(parts, analysis, shapes, planFor(analysis.units, headUnits, 0, headWeight, channelMultiple));
        throw new Error(`A student at ${(100 * options.macs).toFixed(0)}% of the teacher's MACs cannot be reached by pruning channels: the smallest this graph allows is ${((100 * floor) / teacherProfile.macs).toFixed(0)}%. Ask for a larger fraction.`);
      }
    }
    let keep: Map<string, number[]>;
    if (options.keep) {
      keep = checkPlan(analysis.units, options.keep, { where: 'this teacher' });
    } else if ((options.selection ?? d.selection) === 'refit') {
      progress('selection', 0, 1);
      keep = selectChannels(analysis.units, plan, await readerStates(parts.topology, unpruned, parts.weights, analysis, readers, batches, { ridge: options.ridge ?? d.ridge }));
    } else {
      progress('statistics', 0, 1);
      keep = keepByEnergy(analysis.units, plan, await energyScores(parts, analysis, unpruned, readers, batches));
    }
    pruned = pruneChannels(parts, analysis, keep);
    student = graphFromArtifacts(await artifactsFromParts(pruned), { trainable: true, name: 'derived-student' });

    // Refit: every conv that reads pruned channels, and (by default) every conv after them.
    const order = topologicalOrder(parts.topology);
    const fitted = new Set(replaced.map((r) => r.conv));
    const changed = new Set<string>([
      ...[...keep.keys(), ...fitted].flatMap((u) => analysis.units.find((x) => x.producer === u)?.consumers ?? []),
      ...fitted,
    ]);
    if (refit === 'downstream') {
      const byName = new Map(parts.topology.node.map((n) => [n.name, n]));
      const tainted = new Set(changed);
      for (const n of order) if (dataInputs(byName.get(n)!).some((i) => tainted.has(i))) tainted.add(n);
      for (const n of tainted) if (byName.get(n)!.op === 'Conv2D') changed.add(n);
    }
    const objectThreshold = options.objectRows ?? d.objectRows;
    const targets: RefitTarget[] = refit === 'none' ? [] : order.filter((n) => changed.has(n)).map((conv) => {
      const add = biasAddOf(parts, analysis, conv);
      const block = replaced.find((r) => r.conv === conv);
      const reference = block ? { node: block.output, layout: 'NCHW' as const, inverseLeakyRelu: block.alpha } : undefined;
      const objectRows = objectThreshold > 0 && headConvs.has(conv) ? { classChannels: classes.length, threshold: objectThreshold, repeat: options.objectRepeat ?? d.objectRepeat } : undefined;
      return { conv, filter: dataInputs(parts.topology.node.find((n) => n.name === conv)!)[1]!, bias: add?.bias, target: add?.node ?? conv, outputChannels: keep.get(conv), reference, objectRows };
    });
    const refitReports = await refitConvolutions(pruned.topology, student, reference, targets, batches, {
      rowsPerImage: options.rowsPerImage ?? d.rowsPerImage,
      ridge: options.ridge ?? d.ridge,
      ridgeToward: options.ridgeToward,
      seed: options.seed,
      signal: options.signal,
      onProgress: (done, total) => progress('refit', done, total),
    });

    const profile = profileGraph(student);
    const teacherMacsAtSize = teacherProfile.macs;
    const artifacts = await exportGraph(student, { precision: 'float32' });
    const units = analysis.units.map((u) => ({ producer: u.producer, kept: keep.get(u.producer)?.length ?? u.channels, channels: u.channels, ...(keep.has(u.producer) ? { keep: keep.get(u.producer)! } : {}) }));
    const pct = (100 * profile.macs) / teacherMacsAtSize;
    const manifest: ModelManifest = {
      ...teacherManifest,
      // Nothing pruned or replaced (--macs 1): the teacher at full width with the dataset's classes, the start of pruning while training.
      name: keep.size || replaced.length ? `${teacherManifest.name} pruned to ${pct.toFixed(0)}% MACs, ${classes.length} classes` : `${teacherManifest.name}, ${classes.length} classes`,
      description:
        keep.size || replaced.length
          ? `Derived from ${teacherManifest.name}: ${classes.length} classes kept, ${replaced.length ? `${replaced.length} blocks replaced by fitted 1x1 convolutions, ` : ''}convolution channels pruned to ${pct.toFixed(1)}% of the teacher's MACs and every changed convolution refit by least squares against the teacher on ${images.length} calibration photos (no labels).`
          : `${teacherManifest.name} at full width with ${classes.length} of its classes kept (${pct.toFixed(1)}% of its MACs); no channel pruned, nothing refit.`,
      source: `derived from ${teacherManifest.name} by channel pruning with least-squares refit`,
      classes: [...classes],
      derivedFrom: {
        model: teacherManifest.name,
        classIndices,
        ...(replaced.length ? { replacedBlocks: replaced.map((r) => ({ input: r.input, output: r.output })) } : {}),
        prunedChannels: units.filter((u) => u.kept < u.channels).map((u) => ({ conv: u.producer, kept: u.kept, channels: u.channels })),
        tapChannels: keptChannelsAt(analysis, keep, [...(teacherManifest.taps?.backbone ?? []), ...(teacherManifest.taps?.neck ?? []), ...(teacherManifest.taps?.headFeatures ?? [])]),
        calibration: { images: images.length, inputSize, ...options.calibrationInfo },
        macsFraction: profile.macs / teacherMacsAtSize,
      },
      profile: { parameters: profile.parameters, macs: profile.macs },
    };
    return {
      artifacts,
      manifest,
      report: {
        teacher: { parameters: teacherProfile.parameters, macs: teacherProfile.macs },
        student: { parameters: profile.parameters, macs: profile.macs },
        units,
        refit: refitReports,
        calibration: { images: images.length, inputSize },
        seconds: (Date.now() - started) / 1000,
      },
    };
  } finally {
    student?.dispose();
    if (unpruned && unpruned !== reference) unpruned.dispose();
    reference.dispose();
    tf.dispose(batches);
    if (pruned) for (const [name, t] of Object.entries(pruned.weights)) if (parts.weights[name] !== t) t.dispose();
    if (parts !== teacherParts) for (const [name, t] of Object.entries(parts.weights)) if (teacherParts.weights[name] !== t) t.dispose();
    disposeParts(teacherParts);
  }
}
