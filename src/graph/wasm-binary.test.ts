import { describe, expect, it } from 'vitest';
import { leb, namedLocals, sleb } from './wasm-binary';

describe('the pieces of the WebAssembly binary format', () => {
  it('write unsigned and signed LEB128', () => {
    expect(leb(0)).toEqual([0]);
    expect(leb(64)).toEqual([0x40]);
    expect(leb(624485)).toEqual([0xe5, 0x8e, 0x26]);
    expect(sleb(63)).toEqual([0x3f]);
    // 64 needs a second byte signed: 0x40 alone reads as −64.
    expect(sleb(64)).toEqual([0xc0, 0x00]);
    expect(sleb(-64)).toEqual([0x40]);
    expect(sleb(-123456)).toEqual([0xc0, 0xbb, 0x78]);
  });

  it('give i32.const a signed immediate, and locals their indices after the parameters', () => {
    const L = namedLocals(['a', 'b'], ['i'], ['v']);
    expect(L.i32(64)).toEqual([0x41, 0xc0, 0x00]);
    expect(L.i32(-1)).toEqual([0x41, 0x7f]);
    expect(L.get('b')).toEqual([0x20, 1]);
    expect(L.set('i')).toEqual([0x21, 2]);
    expect(L.tee('v')).toEqual([0x22, 3]);
    expect(L.declarations).toEqual([2, 1, 0x7f, 1, 0x7b]);
    expect(() => L.get('nope')).toThrow('No local named nope');
  });
});
