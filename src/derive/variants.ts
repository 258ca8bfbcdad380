/**
 * Derivation variants measured on NanoDet-g (README, "Deriving a student"): what each choice gave
 * before any training, so a person can pick a budget knowing the cost. Measured with
 * `npm run derive-student -- --calibration ../shared/voc-unlabeled ... --evaluate ../shared/voc-fixture --split trainval`
 * (calibration: the first 32 photos of voc-unlabeled at 416; score: VOC mAP all-point on all
 * 30 fixture images, which the derivation never sees). Measurements, not computed here.
 */
export interface MeasuredVariant {
  student: string;
  parameters: number;
  /** Fraction of the teacher's MACs at 416. */
  macs: number;
  /** VOC mAP all-point (%) before training. */
  map: number;
}

export const MEASURED_TEACHER_MAP = 69.9;

export const MEASURED_VARIANTS: readonly MeasuredVariant[] = [
  { student: 'teacher NanoDet-g', parameters: 3_786_068, macs: 1, map: 69.9 },
  { student: 'install-time structural student (no calibration)', parameters: 2_739_168, macs: 0.844, map: 2.8 },
  { student: '60% MACs, pruned, no refit', parameters: 2_102_724, macs: 0.596, map: 2.6 },
  { student: '60% MACs, pruned + readers refit, ridge 1e-2 (default)', parameters: 2_102_724, macs: 0.596, map: 37.7 },
  { student: '60%, ridge 1e-4', parameters: 2_102_724, macs: 0.596, map: 36.8 },
  { student: '60%, ridge 1e-1', parameters: 2_102_724, macs: 0.596, map: 32.5 },
  { student: '60%, every later conv refit (ridge 1e-4)', parameters: 2_102_724, macs: 0.596, map: 33.3 },
  { student: '60%, head pruned harder (ridge 1e-4)', parameters: 2_416_528, macs: 0.593, map: 36.6 },
  { student: '60%, calibrated at 320 (ridge 1e-4)', parameters: 2_102_724, macs: 0.596, map: 28.6 },
  { student: '60%, 3 blocks replaced by fitted 1x1 convs (ridge 1e-4)', parameters: 2_103_244, macs: 0.599, map: 26.4 },
  { student: '68% MACs (ridge 1e-4)', parameters: 2_562_568, macs: 0.676, map: 39.0 },
  { student: '49% MACs (ridge 1e-4)', parameters: 1_734_108, macs: 0.487, map: 25.8 },
];
