/**
 * The parts of a TensorFlow.js graph model.json topology the executor reads: GraphDef nodes with
 * their attributes, as the tfjs converter writes them (strings base64, ints as strings).
 */
export interface TfTensorShapeProto {
  dim?: { size?: string | number }[];
  unknownRank?: boolean;
}

export interface TfAttrValue {
  s?: string;
  i?: string | number;
  f?: number;
  b?: boolean;
  type?: string;
  shape?: TfTensorShapeProto;
  tensor?: { dtype?: string; tensorShape?: TfTensorShapeProto };
  list?: { s?: string[]; i?: (string | number)[]; f?: number[]; b?: boolean[]; type?: string[]; shape?: TfTensorShapeProto[] };
  func?: unknown;
}

export interface TfNodeDef {
  name: string;
  op: string;
  input?: string[];
  attr?: Record<string, TfAttrValue>;
  device?: string;
}

export interface TfGraphTopology {
  node: TfNodeDef[];
  library?: unknown;
  versions?: unknown;
}

/** A reference to one output of a node: "name" is output 0, "name:1" output 1. */
export interface TensorRef {
  node: string;
  index: number;
}

export function parseTensorRef(ref: string): TensorRef {
  const m = /^(.*):(\d+)$/.exec(ref);
  return m ? { node: m[1]!, index: Number(m[2]) } : { node: ref, index: 0 };
}

export function tensorRefKey(ref: TensorRef): string {
  return ref.index === 0 ? ref.node : `${ref.node}:${ref.index}`;
}

const decodeBase64 = (s: string) => {
  const bin = atob(s);
  let out = '';
  for (let i = 0; i < bin.length; i++) out += String.fromCharCode(bin.charCodeAt(i));
  return out;
};

/** Typed attribute readers; each falls back to `fallback` when the attribute is absent. */
export const attr = {
  string(node: TfNodeDef, key: string, fallback = ''): string {
    const v = node.attr?.[key]?.s;
    return v === undefined ? fallback : decodeBase64(v);
  },
  strings(node: TfNodeDef, key: string): string[] {
    return (node.attr?.[key]?.list?.s ?? []).map(decodeBase64);
  },
  int(node: TfNodeDef, key: string, fallback = 0): number {
    const v = node.attr?.[key]?.i;
    return v === undefined ? fallback : Number(v);
  },
  ints(node: TfNodeDef, key: string, fallback: number[] = []): number[] {
    const v = node.attr?.[key]?.list?.i;
    return v === undefined || v.length === 0 ? fallback : v.map(Number);
  },
  float(node: TfNodeDef, key: string, fallback = 0): number {
    const v = node.attr?.[key]?.f;
    return v === undefined ? fallback : Number(v);
  },
  bool(node: TfNodeDef, key: string, fallback = false): boolean {
    const v = node.attr?.[key]?.b;
    return v === undefined ? fallback : Boolean(v);
  },
  dtype(node: TfNodeDef, key: string): string | undefined {
    return node.attr?.[key]?.type;
  },
  shape(node: TfNodeDef, key: string): number[] | undefined {
    const s = node.attr?.[key]?.shape;
    if (!s || s.unknownRank || !s.dim) return undefined;
    return s.dim.map((d) => (d.size === undefined ? -1 : Number(d.size)));
  },
};
