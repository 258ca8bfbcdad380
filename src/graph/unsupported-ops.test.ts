import { describe, expect, it } from 'vitest';
import { UnsupportedOpsError } from './executor';
import { graphFromArtifacts } from './load';
import type { TfGraphTopology } from './model-json';

function errorOf(topology: TfGraphTopology): Error {
  try {
    graphFromArtifacts({ modelTopology: topology, weightSpecs: [], weightData: new ArrayBuffer(0) });
  } catch (e) {
    return e as Error;
  }
  throw new Error('no error');
}

describe('unsupported ops', () => {
  it('says in one sentence, before the op list, that loops and conditionals are not supported', () => {
    const error = errorOf({
      node: [
        { name: 'x', op: 'Placeholder', attr: { dtype: { type: 'DT_FLOAT' } } },
        { name: 'p', op: 'Placeholder', attr: { dtype: { type: 'DT_BOOL' } } },
        { name: 'sw', op: 'Switch', input: ['x', 'p'] },
        { name: 'm', op: 'Merge', input: ['sw', 'sw:1'] },
        { name: 'ta', op: 'TensorArrayV3', input: ['x'] },
      ],
    });
    expect(error).toBeInstanceOf(UnsupportedOpsError);
    expect(error.message.split('\n')).toEqual([
      'The model has control flow (loops or conditionals), which the trainable executor does not support.',
      'The model uses 3 op(s) the trainable executor does not support:',
      '- Switch: sw',
      '- Merge: m',
      '- TensorArrayV3: ta',
    ]);
  });

  it('lists other ops without that sentence', () => {
    const error = errorOf({ node: [{ name: 'x', op: 'Placeholder' }, { name: 'e', op: 'Einsum', input: ['x'] }] });
    expect(error.message).toBe('The model uses 1 op(s) the trainable executor does not support:\n- Einsum: e');
  });
});
