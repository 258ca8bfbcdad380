/**
 * The 20 PASCAL VOC classes and their mapping onto a model's label space.
 *
 * A model names its classes in its manifest (e.g. the 80 COCO names of NanoDet). Each VOC
 * class maps to the model class of the same name, or of a known alias (VOC "tvmonitor" is
 * COCO "tv"). Names compare case-insensitively, ignoring spaces, "_" and "-", so "dining table",
 * "dining_table" and "diningtable" are one name.
 */

/** The official VOC class order (index 0..19), as in the devkit. */
export const VOC_CLASSES = [
  'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair', 'cow',
  'diningtable', 'dog', 'horse', 'motorbike', 'person', 'pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor',
] as const;

export type VocClassName = (typeof VOC_CLASSES)[number];

/** Other names of VOC classes in common label spaces (COCO first). */
export const VOC_ALIASES: Readonly<Partial<Record<VocClassName, readonly string[]>>> = {
  aeroplane: ['airplane'],
  diningtable: ['dining table'],
  motorbike: ['motorcycle'],
  pottedplant: ['potted plant'],
  sofa: ['couch'],
  tvmonitor: ['tv'],
};

export function normalizeClassName(name: string): string {
  return name.toLowerCase().replace(/[\s_-]+/g, '');
}

export function isVocClass(name: string): name is VocClassName {
  return (VOC_CLASSES as readonly string[]).includes(name);
}

export interface VocClassMapping {
  /** Model class index for each VOC class; undefined where the model has no such class. */
  toModel: Readonly<Record<VocClassName, number | undefined>>;
  /** VOC classes the model cannot predict, in VOC order. */
  unmapped: VocClassName[];
}

/** Maps the 20 VOC classes onto `modelClassNames` (index = model class index). */
export function mapVocClasses(modelClassNames: readonly string[]): VocClassMapping {
  const find = createClassMapper(modelClassNames);
  const toModel = {} as Record<VocClassName, number | undefined>;
  const unmapped: VocClassName[] = [];
  for (const voc of VOC_CLASSES) {
    const idx = find(voc);
    toModel[voc] = idx;
    if (idx === undefined) unmapped.push(voc);
  }
  return { toModel, unmapped };
}

/**
 * Returns a lookup from an annotation's class name to a model class index: the model class
 * of the same (normalised) name first, then a VOC alias. Also serves VOC-format datasets with
 * custom class names, as long as the model uses the same names.
 */
export function createClassMapper(modelClassNames: readonly string[]): (name: string) => number | undefined {
  const byName = new Map<string, number>();
  modelClassNames.forEach((n, i) => {
    const key = normalizeClassName(n);
    // Duplicate names in a model are a manifest mistake; the first one wins.
    if (!byName.has(key)) byName.set(key, i);
  });
  return (name) => {
    const key = normalizeClassName(name);
    const direct = byName.get(key);
    if (direct !== undefined) return direct;
    const voc = VOC_CLASSES.find((c) => c === key);
    for (const alias of (voc && VOC_ALIASES[voc]) ?? []) {
      const idx = byName.get(normalizeClassName(alias));
      if (idx !== undefined) return idx;
    }
    return undefined;
  };
}
