/**
 * How many steps one epoch makes, as the trainer walks the data (no tfjs import, so the lab's page
 * plans a run with the same count).
 */

/** Full batches in one epoch: of all images, or of the photos when every batch holds annotated images too. */
export function stepsPerEpoch(imageCount: number, batchSize: number, mixed?: { photos: number; annotatedPerBatch: number }): number {
  if (mixed && mixed.annotatedPerBatch > 0 && mixed.annotatedPerBatch < batchSize && mixed.photos > 0 && mixed.photos < imageCount) {
    return Math.max(1, Math.floor(mixed.photos / (batchSize - mixed.annotatedPerBatch)));
  }
  return Math.max(1, Math.floor(imageCount / batchSize));
}

/**
 * The experiment with its annotated images per batch kept below the batch size (room for at
 * least one photo in every batch, as parseExperiment requires), whoever changed either.
 */
export function withAnnotatedPerBatchInBatch<C extends { data: { annotatedPerBatch?: number }; schedule: { batchSize: number } }>(c: C): C {
  const perBatch = c.data.annotatedPerBatch ?? 0;
  return perBatch >= c.schedule.batchSize ? { ...c, data: { ...c.data, annotatedPerBatch: Math.max(0, c.schedule.batchSize - 1) } } : c;
}
