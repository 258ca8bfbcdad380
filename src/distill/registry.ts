/**
 * The registry of distillation methods: one explicit list (`METHODS`) from which the UI and the
 * CLI list the methods, and from which a trainer instantiates them with their connectors.
 * `MethodId` is derived from the list, so a method missing here is a compile error wherever its
 * id is used. `PLANNED_METHODS` can name methods that are announced but not written yet (they
 * are listed, not instantiable); it is empty now that RM and LD are registered.
 *
 * A method's own weights (FGFI's lambda, FGD's alpha..lambda, PFI's 1.5, ...) live in its
 * params; `combine` adds an extra per-method `scale` (default 1) on top, for experiments.
 */
import * as tf from '@tensorflow/tfjs';
import type { Assignment } from '../detect/assignment';
import { conv1x1Connector, conv3x3Connector } from './connectors';
import { fgd, FGD_DEFAULTS, type FgdLevelConnectors, type FgdParams } from './fgd';
import { fgfi, FGFI_DEFAULTS, type FgfiParams } from './fgfi';
import { createGcBlock } from './gc-block';
import { headMimic, HEAD_MIMIC_DEFAULTS, type HeadMimicParams } from './head-mimic';
import { hints, HINT_DEFAULTS, type HintParams } from './hints';
import { ld, LD_DEFAULTS, type LdParams } from './ld';
import { pfi, PFI_DEFAULTS, type PfiParams } from './pfi';
import { rankMimicking, RANK_MIMICKING_DEFAULTS, type RankMimickingParams } from './rank-mimicking';
import { softLabelKd, SOFT_LABEL_KD_DEFAULTS, type SoftLabelKdParams } from './soft-label-kd';
import type { Connector, MethodResult, PanelMap } from './types';

/** What a method reads: backbone stage outputs, neck outputs, head features, class and box logits (T and S), the assignment. */
export type InputKind = 'stage' | 'neck' | 'headFeature' | 'classLogits' | 'boxLogits' | 'assignment';

/** Everything a step can hand to the methods; each method checks for the parts it needs. */
export interface DistillInputs {
  /** Backbone stage outputs, [N,H,W,C] each (read only when a method needs them). */
  stageT?: tf.Tensor4D[];
  stageS?: tf.Tensor4D[];
  /** Neck outputs (= head inputs) per level, [N,H,W,C]. */
  neckT?: tf.Tensor4D[];
  neckS?: tf.Tensor4D[];
  /** Head features (NanoDet: the 3x3 head conv output) per level, [N,H,W,C]. */
  headT?: tf.Tensor4D[];
  headS?: tf.Tensor4D[];
  /** Class logits per level, [N,H,W,K]. */
  clsT?: tf.Tensor4D[];
  clsS?: tf.Tensor4D[];
  /** Box-distribution logits per level, [N,H,W,4·(regMax+1)], edges left, top, right, bottom. */
  boxT?: tf.Tensor4D[];
  boxS?: tf.Tensor4D[];
  /** One per image. */
  assignments?: Assignment[];
}

/** Channel counts per level of one feature kind. */
export interface ChannelSpec {
  teacher: number[];
  student: number[];
}

export interface ConnectorContext {
  stage?: ChannelSpec;
  neck?: ChannelSpec;
  headFeature?: ChannelSpec;
  /** Base seed of the random initial weights; level l uses seed + l (and more offsets). Default 0. */
  seed?: number;
}

export interface MethodEntry<Id extends string, P, C> {
  id: Id;
  title: string;
  /** One line, for a list or a tooltip. */
  summary: string;
  citation: string;
  defaults: Readonly<P>;
  needs: readonly InputKind[];
  /** What `createConnectors` builds, in words. */
  connectors: string;
  createConnectors(ctx: ConnectorContext, params: P): C;
  connectorList(connectors: C): Connector[];
  run(inputs: DistillInputs, params: P, connectors: C, withMaps: boolean): MethodResult;
}

function entry<const Id extends string, P, C>(e: MethodEntry<Id, P, C>): MethodEntry<Id, P, C> {
  return e;
}

function need<T>(value: T | undefined, method: string, what: string): T {
  if (value === undefined) throw new Error(`${method} needs ${what} in its inputs; record it from the models and pass it.`);
  return value;
}

function channels(ctx: ConnectorContext, kind: 'stage' | 'neck' | 'headFeature', method: string): ChannelSpec {
  const spec = ctx[kind];
  if (!spec) throw new Error(`${method} builds connectors from the ${kind} channel counts; pass ctx.${kind}.`);
  if (spec.teacher.length !== spec.student.length) {
    throw new Error(`${method}: ${spec.teacher.length} teacher levels but ${spec.student.length} student levels in ctx.${kind}.`);
  }
  return spec;
}

const adapterList = (c: (Connector | null)[]) => c.filter((x): x is Connector => x !== null);

export const METHODS = [
  entry({
    id: 'kd',
    title: 'Soft-label KD',
    summary: 'The student matches the teacher’s softened class scores at every location (the baseline).',
    citation: 'Hinton, Vinyals, Dean. Distilling the Knowledge in a Neural Network. NIPS Deep Learning Workshop 2014.',
    defaults: SOFT_LABEL_KD_DEFAULTS,
    needs: ['classLogits'],
    connectors: 'none',
    createConnectors: (): null[] => [],
    connectorList: adapterList,
    run: (inputs, params: SoftLabelKdParams, _c, withMaps) =>
      softLabelKd({ clsT: need(inputs.clsT, 'kd', 'clsT'), clsS: need(inputs.clsS, 'kd', 'clsS') }, params, { withMaps }),
  }),
  entry({
    id: 'fgfi',
    title: 'FGFI: fine-grained feature imitation',
    summary: 'The student imitates the teacher’s neck features near objects (anchors with high IoU to a GT).',
    citation: 'Wang, Yuan, Zhang, Feng. Distilling Object Detectors with Fine-grained Feature Imitation. CVPR 2019.',
    defaults: FGFI_DEFAULTS,
    needs: ['neck', 'assignment'],
    connectors: 'per level, a 3x3 conv S→T channels (+ ReLU unless adapterRelu is false), N(0, 0.01²) init',
    createConnectors: (ctx, params: FgfiParams) => {
      const spec = channels(ctx, 'neck', 'fgfi');
      return spec.teacher.map((ct, l) =>
        conv3x3Connector(spec.student[l] ?? 0, ct, { name: `fgfi_adapter_${l}`, relu: params.adapterRelu, seed: (ctx.seed ?? 0) + l }),
      );
    },
    connectorList: adapterList,
    run: (inputs, params: FgfiParams, adapters: (Connector | null)[], withMaps) =>
      fgfi(
        {
          featT: need(inputs.neckT, 'fgfi', 'neckT'),
          featS: need(inputs.neckS, 'fgfi', 'neckS'),
          assignments: need(inputs.assignments, 'fgfi', 'assignments'),
          adapters,
        },
        params,
        { withMaps },
      ),
  }),
  entry({
    id: 'fgd',
    title: 'FGD: focal and global distillation',
    summary: 'Foreground and background imitation weighted by the teacher’s attention, plus attention and global-relation losses.',
    citation: 'Yang, Li, Jiang, Wang, Li, Yuan, Zhao. Focal and Global Knowledge Distillation for Detectors. CVPR 2022.',
    defaults: FGD_DEFAULTS,
    needs: ['neck', 'assignment'],
    connectors: 'per level, a 1x1 align conv S→T when channels differ, and a student and a teacher GcBlock',
    createConnectors: (ctx): FgdLevelConnectors[] => {
      const spec = channels(ctx, 'neck', 'fgd');
      const seed = ctx.seed ?? 0;
      return spec.teacher.map((ct, l) => {
        const cs = spec.student[l] ?? 0;
        return {
          align: cs === ct ? null : conv1x1Connector(cs, ct, { name: `fgd_align_${l}`, init: 'uniform', seed: seed + l }),
          gcS: createGcBlock({ name: `fgd_gc_s_${l}`, channels: ct, seed: seed + 100 + 10 * l }),
          gcT: createGcBlock({ name: `fgd_gc_t_${l}`, channels: ct, seed: seed + 200 + 10 * l }),
        };
      });
    },
    connectorList: (c: FgdLevelConnectors[]) =>
      c.flatMap((l) => [l.align, l.gcS, l.gcT].filter((x): x is Connector => x !== null && x !== undefined)),
    run: (inputs, params: FgdParams, connectors: FgdLevelConnectors[], withMaps) => {
      const assignments = need(inputs.assignments, 'fgd', 'assignments');
      return fgd(
        {
          featT: need(inputs.neckT, 'fgd', 'neckT'),
          featS: need(inputs.neckS, 'fgd', 'neckS'),
          gtBoxes: assignments.map((a) => a.gts.map((g) => g.box)),
          inputSize: assignments[0]?.grid.inputSize ?? 0,
          connectors,
        },
        params,
        { withMaps },
      );
    },
  }),
  entry({
    id: 'pfi',
    title: 'PFI: prediction-guided feature imitation',
    summary: 'Feature imitation weighted by how much the teacher’s and student’s class predictions differ there.',
    citation:
      'Li, Wu, Su, Wang, Yuan. Knowledge Distillation for Object Detection via Rank Mimicking and Prediction-guided Feature Imitation. AAAI 2022.',
    defaults: PFI_DEFAULTS,
    needs: ['neck', 'classLogits'],
    connectors: 'per level, a 1x1 conv S→T channels, PyTorch default init',
    createConnectors: (ctx) => {
      const spec = channels(ctx, 'neck', 'pfi');
      return spec.teacher.map((ct, l) =>
        conv1x1Connector(spec.student[l] ?? 0, ct, { name: `pfi_adapter_${l}`, init: 'uniform', seed: (ctx.seed ?? 0) + l }),
      );
    },
    connectorList: adapterList,
    run: (inputs, params: PfiParams, adapters: (Connector | null)[], withMaps) =>
      pfi(
        {
          featT: need(inputs.neckT, 'pfi', 'neckT'),
          featS: need(inputs.neckS, 'pfi', 'neckS'),
          clsT: need(inputs.clsT, 'pfi', 'clsT'),
          clsS: need(inputs.clsS, 'pfi', 'clsS'),
          adapters,
        },
        params,
        { withMaps },
      ),
  }),
  entry({
    id: 'head-mimic',
    title: 'Head mimicking (after MimicDet)',
    summary: 'At the positive anchors, the student’s head features align in direction (cosine) with the teacher’s.',
    citation: 'Lu, Li, Yan, Liu, Yuan, Ouyang. MimicDet: Bridging the Gap Between One-Stage and Two-Stage Object Detection. ECCV 2020.',
    defaults: HEAD_MIMIC_DEFAULTS,
    needs: ['headFeature', 'assignment'],
    connectors: 'per level, a 1x1 conv S→T channels only when channels differ, PyTorch default init',
    createConnectors: (ctx) => {
      const spec = channels(ctx, 'headFeature', 'head-mimic');
      return spec.teacher.map((ct, l) => {
        const cs = spec.student[l] ?? 0;
        return cs === ct ? null : conv1x1Connector(cs, ct, { name: `mimic_adapter_${l}`, init: 'uniform', seed: (ctx.seed ?? 0) + l });
      });
    },
    connectorList: adapterList,
    run: (inputs, params: HeadMimicParams, adapters: (Connector | null)[], withMaps) =>
      headMimic(
        {
          headT: need(inputs.headT, 'head-mimic', 'headT'),
          headS: need(inputs.headS, 'head-mimic', 'headS'),
          assignments: need(inputs.assignments, 'head-mimic', 'assignments'),
          adapters,
        },
        params,
        { withMaps },
      ),
  }),
  entry({
    id: 'rm',
    title: 'RM: rank mimicking',
    summary: 'For each object, the student ranks its positive anchors (by class score and by box IoU) the way the teacher does.',
    citation:
      'Li, Wu, Su, Wang, Yuan. Knowledge Distillation for Object Detection via Rank Mimicking and Prediction-guided Feature Imitation. AAAI 2022.',
    defaults: RANK_MIMICKING_DEFAULTS,
    needs: ['classLogits', 'boxLogits', 'assignment'],
    connectors: 'none',
    createConnectors: (): null[] => [],
    connectorList: adapterList,
    run: (inputs, params: RankMimickingParams, _c, withMaps) =>
      rankMimicking(
        {
          clsT: need(inputs.clsT, 'rm', 'clsT'),
          clsS: need(inputs.clsS, 'rm', 'clsS'),
          boxT: need(inputs.boxT, 'rm', 'boxT'),
          boxS: need(inputs.boxS, 'rm', 'boxS'),
          assignments: need(inputs.assignments, 'rm', 'assignments'),
        },
        params,
        { withMaps },
      ),
  }),
  entry({
    id: 'ld',
    title: 'LD: localization distillation',
    summary: 'The student matches the teacher’s box-edge distributions at the positives and in the valuable localisation region.',
    citation: 'Zheng, Ye, Wang, Cao, Ren, Hu, Zuo. Localization Distillation for Dense Object Detection. CVPR 2022.',
    defaults: LD_DEFAULTS,
    needs: ['boxLogits', 'classLogits', 'assignment'],
    connectors: 'none',
    createConnectors: (): null[] => [],
    connectorList: adapterList,
    run: (inputs, params: LdParams, _c, withMaps) =>
      ld(
        {
          boxT: need(inputs.boxT, 'ld', 'boxT'),
          boxS: need(inputs.boxS, 'ld', 'boxS'),
          clsS: need(inputs.clsS, 'ld', 'clsS'),
          clsT: params.classKd ? need(inputs.clsT, 'ld', 'clsT (classKd is on)') : inputs.clsT,
          assignments: need(inputs.assignments, 'ld', 'assignments'),
        },
        params,
        { withMaps },
      ),
  }),
  entry({
    id: 'hints',
    title: 'Hints at every stage (after FitNets)',
    summary: 'The student’s backbone stages, neck and head features regress onto the teacher’s, everywhere; needs no boxes.',
    citation: 'Romero, Ballas, Kahou, Chassang, Gatta, Bengio. FitNets: Hints for Thin Deep Nets. ICLR 2015.',
    defaults: HINT_DEFAULTS,
    needs: ['stage', 'neck', 'headFeature'],
    connectors: 'per tap, a 1x1 conv S→T only when channels differ (a student derived from the teacher needs none), PyTorch default init',
    createConnectors: (ctx, params: HintParams): HintRegressors => {
      const make = (kind: 'stage' | 'neck' | 'headFeature', prefix: string, on: boolean, offset: number) => {
        if (!on) return [];
        const spec = channels(ctx, kind, 'hints');
        return spec.teacher.map((ct, l) => {
          const cs = spec.student[l] ?? 0;
          return cs === ct ? null : conv1x1Connector(cs, ct, { name: `hint_${prefix}_${l}`, init: 'uniform', seed: (ctx.seed ?? 0) + offset + l });
        });
      };
      return { stage: make('stage', 'stage', params.stages, 0), neck: make('neck', 'neck', params.neck, 20), head: make('headFeature', 'head', params.head, 40) };
    },
    connectorList: (c: HintRegressors) => adapterList([...c.stage, ...c.neck, ...c.head]),
    run: (inputs, params: HintParams, r: HintRegressors, withMaps) =>
      hints(
        {
          groups: {
            stage: params.stages ? { teacher: need(inputs.stageT, 'hints', 'stageT'), student: need(inputs.stageS, 'hints', 'stageS'), regressors: r.stage } : undefined,
            neck: params.neck ? { teacher: need(inputs.neckT, 'hints', 'neckT'), student: need(inputs.neckS, 'hints', 'neckS'), regressors: r.neck } : undefined,
            head: params.head ? { teacher: need(inputs.headT, 'hints', 'headT'), student: need(inputs.headS, 'hints', 'headS'), regressors: r.head } : undefined,
          },
        },
        params,
        { withMaps },
      ),
  }),
] as const;

/** The hint method's regressors per group and tap (null: channels agree). */
interface HintRegressors {
  stage: (Connector | null)[];
  neck: (Connector | null)[];
  head: (Connector | null)[];
}

export type MethodId = (typeof METHODS)[number]['id'];
type EntryOf<K extends MethodId> = Extract<(typeof METHODS)[number], { id: K }>;
export type ParamsOf<K extends MethodId> = EntryOf<K>['defaults'] extends Readonly<infer P> ? P : never;

/** A method announced for the list before its code exists: shown, not instantiable. */
export interface PlannedMethod {
  id: string;
  title: string;
  citation: string;
  status: 'not-registered';
}

/** Methods listed but not registered yet; none at present. */
export const PLANNED_METHODS: readonly PlannedMethod[] = [];

/** Plain rows for a UI list or a CLI `--list`: registered methods first, then planned ones. */
export function listMethods(): { id: string; title: string; summary: string; citation: string; needs: readonly InputKind[]; registered: boolean }[] {
  return [
    ...METHODS.map((m) => ({ id: m.id, title: m.title, summary: m.summary, citation: m.citation, needs: m.needs, registered: true })),
    ...PLANNED_METHODS.map((m) => ({ id: m.id, title: m.title, summary: 'Not available yet.', citation: m.citation, needs: [], registered: false })),
  ];
}

export function getMethod<K extends MethodId>(id: K): EntryOf<K> {
  const found = METHODS.find((m) => m.id === id);
  if (!found) {
    const planned = PLANNED_METHODS.find((m) => m.id === id);
    throw new Error(
      planned
        ? `Method '${id}' (${planned.title}) is not registered yet.`
        : `Unknown method '${id}'; known: ${METHODS.map((m) => m.id).join(', ')}.`,
    );
  }
  return found as EntryOf<K>;
}

/** A method ready to run in a training step: its params, its connectors and their variables. */
export interface MethodInstance {
  id: MethodId;
  /** Name used for its terms and maps in `combine` (the id unless given). */
  label: string;
  scale: number;
  connectors: Connector[];
  /** The trainable variables of its connectors: optimise them with the student, never export. */
  variables: tf.Variable[];
  run(inputs: DistillInputs, withMaps?: boolean): MethodResult;
  dispose(): void;
}

export function createMethod<K extends MethodId>(
  id: K,
  options: { params?: Partial<ParamsOf<K>>; scale?: number; label?: string; channels?: ConnectorContext } = {},
): MethodInstance {
  // The entry's P and C are tied to K; TypeScript cannot follow that through the union here.
  const e = getMethod(id) as unknown as MethodEntry<K, ParamsOf<K>, unknown>;
  const params = { ...e.defaults, ...options.params } as ParamsOf<K>;
  const built = e.createConnectors(options.channels ?? {}, params);
  const connectors = e.connectorList(built);
  return {
    id,
    label: options.label ?? id,
    scale: options.scale ?? 1,
    connectors,
    variables: connectors.flatMap((c) => c.variables),
    run: (inputs, withMaps = false) => e.run(inputs, params, built, withMaps),
    dispose: () => connectors.forEach((c) => c.dispose()),
  };
}

export interface LabeledResult {
  label: string;
  result: MethodResult;
  /** Extra multiplier on the method's (already weighted) loss. Default 1. */
  scale?: number;
}

/**
 * Total = detection loss + Sum scale · method loss. Terms: 'detection' and 'detection/<name>',
 * '<label>' (the scaled method loss) and '<label>/<term>'; maps renamed '<label>/<name>'.
 * The returned terms share tensors with the inputs (only the total and the scaled losses are
 * new): call it inside the step's tidy or gradient closure, and dispose once.
 */
export function combine(parts: LabeledResult[], detection?: { loss: tf.Scalar; terms?: Record<string, tf.Scalar> }): MethodResult {
  const labels = new Set<string>();
  for (const p of parts) {
    if (labels.has(p.label)) throw new Error(`combine: the label '${p.label}' appears twice; give each method instance its own label.`);
    labels.add(p.label);
  }
  const terms: Record<string, tf.Scalar> = {};
  const losses: tf.Scalar[] = [];
  if (detection) {
    terms['detection'] = detection.loss;
    for (const [k, v] of Object.entries(detection.terms ?? {})) terms[`detection/${k}`] = v;
    losses.push(detection.loss);
  }
  let maps: PanelMap[] | undefined;
  for (const { label, result, scale = 1 } of parts) {
    const scaled = scale === 1 ? result.loss : (tf.mul(result.loss, scale) as tf.Scalar);
    terms[label] = scaled;
    for (const [k, v] of Object.entries(result.terms)) terms[`${label}/${k}`] = v;
    losses.push(scaled);
    if (result.maps) (maps ??= []).push(...result.maps.map((m) => ({ ...m, name: `${label}/${m.name}` })));
  }
  const loss = (losses.length === 0 ? tf.scalar(0) : losses.length === 1 ? (losses[0] as tf.Scalar).clone() : tf.addN(losses)) as tf.Scalar;
  return maps ? { loss, terms, maps } : { loss, terms };
}

/** Runs every instance on the step's inputs and combines them with the detection loss. */
export function runMethods(
  instances: MethodInstance[],
  inputs: DistillInputs,
  options: { detection?: { loss: tf.Scalar; terms?: Record<string, tf.Scalar> }; withMaps?: boolean } = {},
): MethodResult {
  const parts = instances.map((m) => ({ label: m.label, scale: m.scale, result: m.run(inputs, options.withMaps ?? false) }));
  return combine(parts, options.detection);
}
