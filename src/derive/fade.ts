/**
 * Pruning by fading out, during training: the student keeps the teacher's full width while the
 * channels a plan prunes are scaled from their trained values down to zero over the first steps,
 * so the rest of the network learns, step by step, to do without them (gradual pruning, after
 * Zhu and Gupta, "To prune, or not to prune", 2017, here at the level of whole channels). Once a
 * channel's producing weights are zero its output is zero, and cutting it from the graph
 * (`pruneToPlan`) changes nothing: the pruned graph computes what the faded one did.
 *
 * A one-shot prune with a least-squares refit puts every layer where its calibration data wants
 * it, and gradient steps then move it off (see the README); fading starts from trained weights
 * that take gradient steps well and removes capacity slowly enough for them to follow. Measured
 * on NanoDet-g at CPU budgets (600 steps at most), it still scores below the one-shot refit
 * (README, "Pruning while distilling").
 */
import * as tf from '@tensorflow/tfjs-core';
import type { TrainableGraph } from '../graph/executor';
import { artifactsFromParts, partsFromArtifacts, type GraphParts } from '../graph/surgery';
import { exportGraph } from '../graph/export';
import { graphFromArtifacts } from '../graph/load';
import { profileGraph } from '../graph/profile';
import type { ModelManifest } from '../models/manifest';
import { analyzeChannels, checkPlan, keptChannelsAt, producingSlices, pruneChannels } from './channels';

/** Channels kept per pruned unit: producer conv → ascending channel indices. */
export type ChannelPlan = Map<string, number[]>;

/** The fade's scale at a step: a half cosine from 1 (step 0) to 0 (at `fadeSteps` and after). */
export function fadeScale(step: number, fadeSteps: number): number {
  if (fadeSteps <= 0 || step >= fadeSteps) return 0;
  return 0.5 * (1 + Math.cos((Math.PI * step) / fadeSteps));
}

/** A plan read from a derivation record (`derivation.json`'s report.units, or the units alone). */
export function planFromUnits(units: readonly { producer: string; kept: number; channels: number; keep?: number[] }[]): ChannelPlan {
  const plan: ChannelPlan = new Map();
  for (const u of units) {
    if (u.kept >= u.channels) continue;
    if (!u.keep || u.keep.length !== u.kept) throw new Error(`The derivation record does not list the channels "${u.producer}" keeps. Derive the student again with this version.`);
    plan.set(u.producer, [...u.keep]);
  }
  if (plan.size === 0) throw new Error('The derivation record prunes no channels: there is nothing to fade.');
  return plan;
}

/** Every feature node a manifest taps. */
export function tappedNodes(manifest: Pick<ModelManifest, 'taps'>): string[] {
  const t = manifest.taps;
  return [...(t?.backbone ?? []), ...(t?.neck ?? []), ...(t?.headFeatures ?? [])];
}

export class ChannelFade {
  private constructor(
    private readonly entries: { variable: tf.Variable; keepMask: tf.Tensor; start: tf.Tensor }[],
    /** Per tapped node whose channels the plan prunes: the channels that stay (what hints compare while the rest fade). */
    readonly tapChannels: Record<string, number[]>,
  ) {}

  /**
   * The fade of `plan` on a full-width student: its graph (whose weights are trainable variables)
   * and the artifacts it was loaded from (for the topology). Throws when the plan does not fit.
   */
  static create(graph: TrainableGraph, artifacts: tf.io.ModelArtifacts, plan: ChannelPlan, taps: readonly string[] = []): ChannelFade {
    const parts = partsFromArtifacts(artifacts);
    try {
      const analysis = analyzeChannels(parts, graph.nodeShapes(), graph.outputs);
      checkPlan(analysis.units, plan, { where: graph.name, ifNarrower: 'Pruning while training starts from the full-width student (derive-student --macs 1), not from one already pruned.' });
      const entries = producingSlices(parts, analysis, plan).map((s) => {
        const variable = graph.variables.get(s.weight);
        if (!variable) throw new Error(`"${s.weight}" is not a trainable weight of ${graph.name}: its channels cannot fade.`);
        return tf.tidy(() => {
          const along = new Float32Array(s.size);
          for (const c of s.keep) along[c] = 1;
          const shape = variable.shape.map((d, i) => (i === s.axis ? d : 1));
          const keepMask = tf.keep(tf.tensor(along, shape));
          const start = tf.keep(tf.mul(variable, tf.sub(1, keepMask)));
          return { variable, keepMask, start };
        });
      });
      return new ChannelFade(entries, keptChannelsAt(analysis, plan, taps));
    } finally {
      for (const t of Object.values(parts.weights)) t.dispose();
    }
  }

  /** Sets every faded entry to `scale` times its value when the fade began; the kept entries stay as trained. */
  set(scale: number): void {
    for (const { variable, keepMask, start } of this.entries) {
      tf.tidy(() => variable.assign(tf.add(tf.mul(variable, keepMask), tf.mul(start, scale))));
    }
  }

  dispose(): void {
    for (const e of this.entries) tf.dispose([e.keepMask, e.start]);
  }
}

/**
 * Cuts a plan's channels out of a model (no refit): the result has the plan's widths, and where
 * the model's pruned channels were already zero (after a fade) it computes the same outputs.
 * The manifest records the cut like a derivation's, so hints read the source at the same channels.
 */
export async function pruneToPlan(artifacts: tf.io.ModelArtifacts, manifest: ModelManifest, plan: ChannelPlan, source: { name: string; macs: number }): Promise<{ artifacts: tf.io.ModelArtifacts; manifest: ModelManifest }> {
  const parts = partsFromArtifacts(artifacts);
  let pruned: GraphParts | undefined;
  const full = graphFromArtifacts(artifacts, { trainable: false });
  try {
    const analysis = analyzeChannels(parts, full.nodeShapes(), full.outputs);
    pruned = pruneChannels(parts, analysis, plan);
    const graph = graphFromArtifacts(await artifactsFromParts(pruned), { trainable: false });
    try {
      const profile = profileGraph(graph);
      const out = await exportGraph(graph, { precision: 'float32' });
      const taps = tappedNodes(manifest);
      const units = analysis.units.filter((u) => plan.has(u.producer));
      return {
        artifacts: out,
        manifest: {
          ...manifest,
          name: `${manifest.name}, faded to ${((100 * profile.macs) / source.macs).toFixed(0)}% MACs`,
          derivedFrom: {
            ...manifest.derivedFrom,
            model: manifest.derivedFrom?.model ?? source.name,
            prunedChannels: units.map((u) => ({ conv: u.producer, kept: plan.get(u.producer)!.length, channels: u.channels })),
            tapChannels: keptChannelsAt(analysis, plan, taps),
            macsFraction: profile.macs / source.macs,
          },
          profile: { parameters: profile.parameters, macs: profile.macs },
        },
      };
    } finally {
      graph.dispose();
    }
  } finally {
    full.dispose();
    if (pruned) for (const [name, t] of Object.entries(pruned.weights)) if (parts.weights[name] !== t) t.dispose();
    for (const t of Object.values(parts.weights)) t.dispose();
  }
}
