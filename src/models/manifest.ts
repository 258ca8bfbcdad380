/**
 * The model manifest: a JSON file next to each model in models/ that tells the lab what the
 * graph itself does not — how to feed it, what its classes are, how to read its head, and which
 * inner nodes are worth tapping. A person loading their own model supplies one.
 */
export interface ModelManifest {
  manifestVersion: 1;
  name: string;
  description?: string;
  source?: string;
  /** The graph model's model.json, relative to the manifest. */
  model: string;
  input: { name: string; size: number; layout: 'NCHW' | 'NHWC' };
  preprocess: PreprocessSpec;
  classes: string[];
  head: GflHeadSpec;
  taps?: { backbone?: string[]; neck?: string[]; headFeatures?: string[]; layout?: 'NCHW' | 'NHWC' };
  /** For a model derived from another one (a student made from a teacher by graph surgery). */
  derivedFrom?: {
    model: string;
    /** For each of this model's classes, the index of the same class in the source model. */
    classIndices?: number[];
    removedBlocks?: { input: string; output: string }[];
    /** Blocks replaced by a 1x1 convolution fitted to the block's output. */
    replacedBlocks?: { input: string; output: string }[];
    /** Channel pruning: output channels kept per pruned convolution (kept of total). */
    prunedChannels?: { conv: string; kept: number; channels: number }[];
    /**
     * Tapped nodes whose channels were pruned: for each, the source model's channels this model
     * keeps there, in order. Distillation reads the source model's tap at these channels.
     */
    tapChannels?: Record<string, number[]>;
    /** The photos the student was refit on (no labels): how many, at what input size, and their sha256. */
    calibration?: { images: number; inputSize: number; sha256?: string; source?: string };
    /** MACs as a fraction of the source model's at `input.size`. */
    macsFraction?: number;
    /**
     * When several students were derived, one per set of calibration photos, and this one kept:
     * every candidate's photos (indices in the folder's name order) and its score on the
     * annotated split it was chosen on.
     */
    choice?: { data: string; split: string; inputSize: number; chosen: number; candidates: { photos: [number, number]; mapAll: number; cocoAp: number }[] };
  };
  /** Size and cost, for the UI: parameters, and multiply-accumulates per image at `input.size`. */
  profile?: { parameters: number; macs: number };
}

export interface PreprocessSpec {
  resize: 'letterbox';
  channelOrder: 'RGB' | 'BGR';
  /** Per-channel mean and std in the model's channel order, on 0–255 pixel values. */
  mean: [number, number, number];
  std: [number, number, number];
  /** Raw pixel value (0–255, before normalisation) of the letterbox padding. */
  padValue: number;
}

export interface GflHeadSpec {
  type: 'gfl';
  strides: number[];
  regMax: number;
  octaveBaseScale: number;
  /** One raw head output node per level, in stride order: class logits then 4·(regMax+1) box logits. */
  outputs: string[];
  outputLayout: 'NHWC' | 'NCHW';
}

/** Checks an untrusted JSON value and returns it typed, or throws one error listing every problem. */
export function parseManifest(value: unknown, origin = 'manifest'): ModelManifest {
  const problems: string[] = [];
  const m = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
  const need = (cond: boolean, what: string) => {
    if (!cond) problems.push(what);
  };
  const isStr = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
  const isNumArr = (v: unknown, n?: number) =>
    Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isFinite(x)) && (n === undefined || v.length === n);
  const obj = (v: unknown) => (typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : undefined);

  need(typeof value === 'object' && value !== null, 'it is not a JSON object');
  need(m.manifestVersion === 1, '"manifestVersion" must be 1');
  need(isStr(m.name), '"name" must be a non-empty string');
  need(isStr(m.model), '"model" must name the model.json file');
  const input = obj(m.input);
  need(!!input && isStr(input.name), '"input.name" must name the input node');
  need(!!input && typeof input.size === 'number' && input.size > 0 && input.size % 32 === 0, '"input.size" must be a positive multiple of 32');
  need(!!input && (input.layout === 'NCHW' || input.layout === 'NHWC'), '"input.layout" must be "NCHW" or "NHWC"');
  const pre = obj(m.preprocess);
  need(!!pre && pre.resize === 'letterbox', '"preprocess.resize" must be "letterbox"');
  need(!!pre && (pre.channelOrder === 'RGB' || pre.channelOrder === 'BGR'), '"preprocess.channelOrder" must be "RGB" or "BGR"');
  need(!!pre && isNumArr(pre.mean, 3), '"preprocess.mean" must be 3 numbers');
  need(!!pre && isNumArr(pre.std, 3) && (pre.std as number[]).every((s) => s > 0), '"preprocess.std" must be 3 positive numbers');
  need(!!pre && typeof pre.padValue === 'number', '"preprocess.padValue" must be a number');
  need(Array.isArray(m.classes) && m.classes.length > 0 && m.classes.every(isStr), '"classes" must be a non-empty list of names');
  const head = obj(m.head);
  need(!!head && head.type === 'gfl', '"head.type" must be "gfl" (the only head type supported so far)');
  need(!!head && isNumArr(head.strides) && (head.strides as number[]).length > 0, '"head.strides" must be a list of numbers');
  need(!!head && typeof head.regMax === 'number' && head.regMax >= 1, '"head.regMax" must be a number >= 1');
  need(!!head && typeof head.octaveBaseScale === 'number', '"head.octaveBaseScale" must be a number');
  need(
    !!head && Array.isArray(head.outputs) && head.outputs.every(isStr) && isNumArr(head.strides) && head.outputs.length === (head.strides as number[]).length,
    '"head.outputs" must list one node per stride',
  );
  need(!!head && (head.outputLayout === 'NHWC' || head.outputLayout === 'NCHW'), '"head.outputLayout" must be "NHWC" or "NCHW"');
  if (problems.length > 0) {
    throw new Error(`Invalid model manifest (${origin}):\n- ${problems.join('\n- ')}`);
  }
  return value as ModelManifest;
}
