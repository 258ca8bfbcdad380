import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { idListSha256, Sha256, sha256Hex } from './sha256';

const node = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

describe('sha256Hex', () => {
  it('matches the published test vectors', () => {
    expect(sha256Hex('')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(sha256Hex('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')).toBe('248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1');
  });

  it('agrees with node:crypto on every length around the block and padding edges, and in chunks', () => {
    const bytes = Uint8Array.from({ length: 300 }, (_, i) => (i * 131 + 7) & 255);
    for (const n of [1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 300]) expect(sha256Hex(bytes.subarray(0, n))).toBe(node(bytes.subarray(0, n)));
    const chunked = new Sha256().update(bytes.subarray(0, 10)).update(bytes.subarray(10, 70)).update(bytes.subarray(70)).hex();
    expect(chunked).toBe(node(bytes));
  });

  it('hashes an id list sorted, one per line', () => {
    expect(idListSha256(['b', 'a', 'c'])).toBe(node('a\nb\nc'));
    expect(idListSha256(['2007_000061', '2007_000032'])).toBe(idListSha256(['2007_000032', '2007_000061']));
  });
});
