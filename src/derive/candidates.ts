/**
 * Deriving from several sets of photos and keeping the student that scores best on annotated
 * images. Which photos calibrate a derivation moves the student's mAP as much as any setting
 * does (README: 27.0 to 41.7 over five sets of 32), and no label-free measure found the better
 * set; the annotated training images do, and the choice holds on held-out images (cross-validated
 * over three folds, README).
 */
import type { ModelManifest } from '../models/manifest';

/** Consecutive disjoint sets of `perSet` items out of `total`: [start, end) index ranges. */
export function photoSets(total: number, perSet: number, count: number): [number, number][] {
  if (!(Number.isInteger(count) && count >= 1)) throw new Error(`The number of candidates must be a positive integer, got ${count}.`);
  if (total < perSet * count) {
    throw new Error(`${count} candidates of ${perSet} photos each need ${perSet * count} photos; ${total} are available. Add photos, or ask for fewer candidates or fewer photos each.`);
  }
  return Array.from({ length: count }, (_, i) => [i * perSet, (i + 1) * perSet]);
}

export interface CandidateScore {
  /** VOC mAP all-point on the choosing split. */
  mapAll: number;
  /** COCO AP on the same split, to break ties. */
  cocoAp: number;
}

/** The index of the best candidate: highest mAP, then COCO AP, then the first. */
export function bestCandidate(scores: readonly CandidateScore[]): number {
  if (scores.length === 0) throw new Error('No candidates to choose from.');
  let best = 0;
  scores.forEach((s, i) => {
    const b = scores[best]!;
    if (s.mapAll > b.mapAll || (s.mapAll === b.mapAll && s.cocoAp > b.cocoAp)) best = i;
  });
  return best;
}

/**
 * Derives one candidate per photo set and keeps the one `bestCandidate` picks. A single set is
 * derived and kept without a score. Only the best candidate so far is held, so k candidates cost
 * the memory of two.
 */
export async function deriveBest<T>(
  sets: readonly [number, number][],
  derive: (set: [number, number], index: number) => Promise<T>,
  score: (candidate: T, index: number) => Promise<CandidateScore>,
): Promise<{ kept: T; chosen: number; scores: CandidateScore[] }> {
  if (sets.length === 0) throw new Error('No photo sets to derive from.');
  const scores: CandidateScore[] = [];
  let kept: T | undefined;
  let chosen = 0;
  for (const [i, set] of sets.entries()) {
    const candidate = await derive(set, i);
    if (sets.length === 1) return { kept: candidate, chosen: 0, scores };
    scores.push(await score(candidate, i));
    if (bestCandidate(scores) === i) {
      kept = candidate;
      chosen = i;
    }
  }
  return { kept: kept!, chosen, scores };
}

export type CandidateChoice = NonNullable<NonNullable<ModelManifest['derivedFrom']>['choice']>;

/** What the kept student's manifest records of the choice: where it was made and every candidate's photos and scores. */
export function choiceRecord(where: { data: string; split: string; inputSize: number }, sets: readonly [number, number][], scores: readonly CandidateScore[], chosen: number): CandidateChoice {
  return { ...where, chosen, candidates: sets.map((photos, i) => ({ photos, mapAll: scores[i]!.mapAll, cocoAp: scores[i]!.cocoAp })) };
}
