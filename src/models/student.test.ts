import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { graphFromArtifacts } from '../graph/load';
import { readManifest, readModelArtifacts } from './load-node';
import { parseManifest } from './manifest';
import { deriveDefaultStudent } from './student';

const models = new URL('../../models/', import.meta.url).pathname;

describe('the default student derived from NanoDet-g', () => {
  it('keeps one CSP block per stage and the 20 VOC classes, with the parameters that arithmetic predicts', async () => {
    await tf.setBackend('wasm');
    const { manifest, modelPath } = readManifest(join(models, 'nanodet.manifest.json'));
    const student = await deriveDefaultStudent(readModelArtifacts(modelPath), manifest, 'student.json');
    expect(student.stages).toEqual([
      { kept: 1, removed: 0 },
      { kept: 1, removed: 1 },
      { kept: 1, removed: 1 },
      { kept: 1, removed: 2 },
    ]);
    // Removed blocks (two 3x3 convs + biases each, C→C/2 then C/2→C/2):
    //   C=64: 9·64·32+32 + 9·32·32+32 = 27,712;  C=128: 110,720;  C=256: 442,624 (twice)
    //   → 1,023,680. Head: 60 of 124 output channels of three 1x1 128→124 convs: 3·(128·60+60) = 23,220.
    //   3,786,068 − 1,023,680 − 23,220 = 2,739,168.
    expect(student.manifest.profile!.parameters).toBe(2_739_168);
    expect(student.teacherProfile.parameters).toBe(3_786_068);
    expect(student.manifest.profile!.macs).toBeLessThan(student.teacherProfile.macs);
    const m = parseManifest(student.manifest);
    expect(m.classes).toHaveLength(20);
    expect(m.classes[14]).toBe('person');
    expect(m.derivedFrom!.classIndices![14]).toBe(0); // VOC person is COCO person
    expect(m.derivedFrom!.classIndices![0]).toBe(4); // aeroplane → airplane

    const graph = graphFromArtifacts(student.artifacts);
    const x = tf.randomNormal([1, 3, 416, 416], 0, 1, 'float32', 1);
    const outs = graph.execute(x, m.head.outputs);
    expect(outs.map((o) => o.shape)).toEqual([
      [1, 52, 52, 64],
      [1, 26, 26, 64],
      [1, 13, 13, 64],
    ]);
    tf.dispose([x, ...outs]);
    graph.dispose();
  });
});
