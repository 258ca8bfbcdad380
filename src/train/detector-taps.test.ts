import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../cli/node-lab';
import { pickChannels, readDetector, tapNames } from './detector-taps';

describe('pickChannels', () => {
  it('equals tf.gather along the channels, value for value, in the order asked', async () => {
    await tf.setBackend('wasm');
    const t = tf.randomNormal([2, 3, 4, 7], 0, 10, 'float32', 5) as tf.Tensor4D;
    const channels = [6, 0, 3, 3, 1];
    const picked = pickChannels(t, channels);
    const reference = tf.gather(t, channels, 3);
    expect(picked.shape).toEqual([2, 3, 4, 5]);
    expect(Array.from(picked.dataSync())).toEqual(Array.from(reference.dataSync()));
    expect(() => pickChannels(t, [7])).toThrow(/outside the tensor's 7 channels/);
    tf.dispose([t, picked, reference]);
  });
});

describe('readDetector', () => {
  it('reads the taps (NCHW) and head outputs of NanoDet-g as NHWC, equal to transposing what execute gives', async () => {
    await tf.setBackend('wasm');
    const model = loadModel('nanodet.manifest.json', { trainable: false, name: 'taps-teacher' });
    const input = tf.randomUniform([1, 3, 128, 128], 0, 1, 'float32', 6) as tf.Tensor4D;
    const names = tapNames(model.manifest, { backbone: true });
    const before = tf.memory().numTensors;
    const taps = readDetector(model.graph, model.manifest, input, { backbone: true, featureChannels: { [names[0]!]: [2, 0] } });
    const plain = model.graph.execute(input, names);
    const features = names.length - model.manifest.head.outputs.length;
    const nhwc = (t: tf.Tensor, layout: string | undefined) => ((layout ?? 'NCHW') === 'NHWC' ? t.clone() : tf.transpose(t, [0, 2, 3, 1]));
    const expected = plain.map((t, i) => nhwc(t, i < features ? model.manifest.taps?.layout : model.manifest.head.outputLayout));
    const got = [...taps.backbone, ...taps.neck, ...taps.head, ...taps.raw];
    expect(got.length).toBe(names.length);
    // The first backbone tap was read at channels [2, 0].
    const first = tf.gather(expected[0]!, [2, 0], 3);
    expect(Array.from(got[0]!.dataSync())).toEqual(Array.from(first.dataSync()));
    for (let i = 1; i < got.length; i++) {
      expect(got[i]!.shape).toEqual(expected[i]!.shape);
      expect(Array.from(got[i]!.dataSync())).toEqual(Array.from(expected[i]!.dataSync()));
    }
    tf.dispose([...plain, ...expected, first, ...got, ...taps.cls, ...taps.box]);
    expect(tf.memory().numTensors).toBe(before);
    input.dispose();
    model.graph.dispose();
  });
});
