import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadVocDataset } from './dataset';
import { foldSplitName, parseFoldSplit, selectFold } from './folds';
import { fromDirectory } from './source-node';

const fixtureDir = fileURLToPath(new URL('../../../../shared/voc-fixture/VOCdevkit', import.meta.url));

describe('cross-validation folds', () => {
  it('parses fold names and rejects folds that cannot exist', () => {
    expect(parseFoldSplit('trainval')).toBeNull();
    expect(parseFoldSplit('trainval/fold-2-of-3')).toEqual({ base: 'trainval', fold: 2, folds: 3, heldOut: true });
    expect(parseFoldSplit('a/b/without-fold-1-of-5')).toEqual({ base: 'a/b', fold: 1, folds: 5, heldOut: false });
    expect(() => parseFoldSplit('trainval/fold-4-of-3')).toThrow('fold 4 does not exist; the folds of 3 are numbered 1 to 3');
    expect(() => parseFoldSplit('trainval/fold-1-of-1')).toThrow('at least 2 folds');
    expect(foldSplitName('trainval', 2, 3, false)).toBe('trainval/without-fold-2-of-3');
  });

  it('deals the sorted ids in turn and keeps the split order', () => {
    // Sorted: a b c d e f g → parts 1 2 3 1 2 3 1.
    const ids = ['g', 'b', 'e', 'a', 'd', 'c', 'f'];
    const fold = (i: number, heldOut: boolean) => selectFold(ids, { base: 's', fold: i, folds: 3, heldOut });
    expect(fold(1, true)).toEqual(['g', 'a', 'd']);
    expect(fold(2, true)).toEqual(['b', 'e']);
    expect(fold(3, true)).toEqual(['c', 'f']);
    expect(fold(2, false)).toEqual(['g', 'a', 'd', 'c', 'f']);
    expect(() => selectFold(['a', 'b'], { base: 's', fold: 1, folds: 3, heldOut: true })).toThrow('Split "s" has 2 images: too few for 3 folds.');
  });

  it('splits the fixture into three disjoint folds that cover trainval', async () => {
    const source = await fromDirectory(fixtureDir);
    const all = (await loadVocDataset(source, { split: 'trainval' })).images.map((i) => i.id);
    const held = [];
    for (let i = 1; i <= 3; i++) {
      const test = (await loadVocDataset(source, { split: foldSplitName('trainval', i, 3, true) })).images.map((x) => x.id);
      const train = (await loadVocDataset(source, { split: foldSplitName('trainval', i, 3, false) })).images.map((x) => x.id);
      expect(test).toHaveLength(10);
      expect(train).toHaveLength(20);
      expect(train.filter((id) => test.includes(id))).toEqual([]);
      held.push(...test);
    }
    expect([...held].sort()).toEqual([...all].sort());
  });
});
