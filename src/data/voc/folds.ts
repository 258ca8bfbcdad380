/**
 * Cross-validation folds of a VOC split, named like splits so that every command that takes a
 * split takes them too:
 *   "<split>/fold-<i>-of-<k>"          the i-th of k parts of <split> (held out: evaluated on),
 *   "<split>/without-fold-<i>-of-<k>"  the other k − 1 parts (trained on).
 * With few annotated images (the fixture's 30) one fixed validation split scores on a handful of
 * objects; training k times, each time on the images outside one fold, and scoring every fold's
 * detections together scores every image with a model that never trained on it.
 *
 * The parts are formed from the split's ids sorted by name, dealt in turn (id j goes to part
 * j mod k), so the same split always gives the same folds whatever the file's order.
 */

export interface FoldSplit {
  /** The split the folds are taken from. */
  base: string;
  /** 1-based. */
  fold: number;
  folds: number;
  /** true: the fold's own images; false: every image outside it. */
  heldOut: boolean;
}

const FOLD_NAME = /^(.+)\/(without-)?fold-(\d+)-of-(\d+)$/;

/** The fold a split name names, or null for a plain split name. Throws on a fold that cannot exist. */
export function parseFoldSplit(name: string): FoldSplit | null {
  const m = FOLD_NAME.exec(name);
  if (!m) return null;
  const fold = Number(m[3]);
  const folds = Number(m[4]);
  if (folds < 2) throw new Error(`Split "${name}": cross-validation needs at least 2 folds.`);
  if (fold < 1 || fold > folds) throw new Error(`Split "${name}": fold ${fold} does not exist; the folds of ${folds} are numbered 1 to ${folds}.`);
  return { base: m[1]!, fold, folds, heldOut: !m[2] };
}

export function foldSplitName(base: string, fold: number, folds: number, heldOut: boolean): string {
  return `${base}/${heldOut ? '' : 'without-'}fold-${fold}-of-${folds}`;
}

/** The ids of a fold (or of the rest) among a split's ids, in the split's own order. */
export function selectFold(ids: readonly string[], f: FoldSplit): string[] {
  if (ids.length < f.folds) throw new Error(`Split "${f.base}" has ${ids.length} images: too few for ${f.folds} folds.`);
  const part = new Map([...ids].sort().map((id, j) => [id, (j % f.folds) + 1]));
  return ids.filter((id) => (part.get(id) === f.fold) === f.heldOut);
}
