import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { artifactsFromParts } from '../graph/surgery';
import { graphFromArtifacts } from '../graph/load';
import { exportGraph } from '../graph/export';
import type { ModelManifest } from '../models/manifest';
import { ChannelFade, fadeScale, planFromUnits, pruneToPlan } from './fade';
import { graphParts } from './test-graph';

const manifest = { name: 'test graph', taps: { backbone: ['actA'] } } as unknown as ModelManifest;

describe('fading pruned channels', () => {
  beforeAll(async () => {
    await tf.setBackend('wasm');
  });

  it('the scale is a half cosine from 1 to 0, then stays at 0', () => {
    expect(fadeScale(0, 100)).toBe(1);
    expect(fadeScale(50, 100)).toBeCloseTo(0.5, 12);
    expect(fadeScale(25, 100)).toBeCloseTo(0.5 * (1 + Math.SQRT1_2), 12);
    expect(fadeScale(100, 100)).toBe(0);
    expect(fadeScale(150, 100)).toBe(0);
  });

  it('scales only the pruned channels\' producing weights (convA channel 2 and its bias) and leaves every other entry', async () => {
    const artifacts = await artifactsFromParts(graphParts());
    const g = graphFromArtifacts(artifacts, { trainable: true });
    const before = Object.fromEntries(['wA', 'bA', 'wB', 'wD'].map((n) => [n, g.variables.get(n)!.arraySync()]));
    const fade = ChannelFade.create(g, artifacts, new Map([['convA', [0, 1, 3]]]));
    fade.set(0.25);
    const wA = g.variables.get('wA')!.arraySync() as number[][][][];
    const wA0 = before.wA as number[][][][];
    wA.forEach((row, i) => row.forEach((col, j) => col.forEach((cin, k) => cin.forEach((v, c) => expect(v).toBeCloseTo(wA0[i]![j]![k]![c]! * (c === 2 ? 0.25 : 1), 6)))));
    expect(g.variables.get('bA')!.arraySync()).toEqual([0.1, -0.2, 0.3 * 0.25, 0.05].map((v) => Math.fround(v)));
    expect(g.variables.get('wB')!.arraySync()).toEqual(before.wB);
    expect(g.variables.get('wD')!.arraySync()).toEqual(before.wD);
    // The scale applies to the value the fade began from, not to the current one: set(1) restores it.
    fade.set(1);
    expect(g.variables.get('wA')!.arraySync()).toEqual(before.wA);
    fade.dispose();
    g.dispose();
  });

  it('once faded to zero, cutting the channels changes no output, and the record keeps the source channels of the tap', async () => {
    const artifacts = await artifactsFromParts(graphParts(3));
    const g = graphFromArtifacts(artifacts, { trainable: true });
    const plan = new Map([['convA', [1, 3]], ['convC', [0]]]);
    const fade = ChannelFade.create(g, artifacts, plan);
    fade.set(0);
    const x = tf.randomNormal([1, 6, 6, 2], 0, 1, 'float32', 4);
    const [faded] = g.execute(x, ['sum']);
    const cut = await pruneToPlan(await exportGraph(g, { precision: 'float32' }), manifest, plan, { name: 'teacher', macs: 1e6 });
    const s = graphFromArtifacts(cut.artifacts, { trainable: false });
    const [pruned] = s.execute(x, ['sum']);
    expect(tf.max(tf.abs(tf.sub(faded!, pruned!))).dataSync()[0]).toBeLessThan(1e-5);
    // And the cut is not trivially equal: the unfaded graph differs.
    fade.set(1);
    const [whole] = g.execute(x, ['sum']);
    expect(tf.max(tf.abs(tf.sub(whole!, pruned!))).dataSync()[0]).toBeGreaterThan(1e-2);
    expect(cut.manifest.derivedFrom?.tapChannels).toEqual({ actA: [1, 3] });
    expect(cut.manifest.derivedFrom?.prunedChannels).toEqual([
      { conv: 'convA', kept: 2, channels: 4 },
      { conv: 'convC', kept: 1, channels: 2 },
    ]);
    tf.dispose([x, faded!, pruned!, whole!]);
    fade.dispose();
    g.dispose();
    s.dispose();
  });

  it('refuses a plan for another graph, and reads plans from derivation records', async () => {
    const artifacts = await artifactsFromParts(graphParts());
    const g = graphFromArtifacts(artifacts, { trainable: true });
    expect(() => ChannelFade.create(g, artifacts, new Map([['conv_17', [0]]]))).toThrow(/not a prunable convolution/);
    expect(() => ChannelFade.create(g, artifacts, new Map([['convA', [3, 1]]]))).toThrow(/ascending/);
    expect(() => ChannelFade.create(g, artifacts, new Map([['convA', [1, 5]]]))).toThrow('The channel plan keeps channel 5 of "convA", which has 4: the plan is for a wider graph.');
    g.dispose();
    expect([...planFromUnits([{ producer: 'convA', kept: 2, channels: 4, keep: [1, 3] }, { producer: 'convC', kept: 2, channels: 2 }])]).toEqual([['convA', [1, 3]]]);
    expect(() => planFromUnits([{ producer: 'convA', kept: 2, channels: 4 }])).toThrow(/does not list the channels/);
    expect(() => planFromUnits([{ producer: 'convC', kept: 2, channels: 2 }])).toThrow(/nothing to fade/);
  });
});
