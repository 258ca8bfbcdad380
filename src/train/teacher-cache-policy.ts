/**
 * When a run keeps the teacher's outputs between epochs, and how much memory it gives them by
 * default (no tfjs import, so the lab's page can show the setting).
 */

/** Default budget: the repair recipe's taps take 3.9 MiB per image at 320, so about 130 images. */
export const DEFAULT_TEACHER_CACHE_MIB = 512;

/** Whether a run's images repeat exactly from epoch to epoch: not with random crops. */
export function teacherCacheApplies(schedule: { cropScale?: number }): boolean {
  return schedule.cropScale === undefined || schedule.cropScale >= 1;
}
