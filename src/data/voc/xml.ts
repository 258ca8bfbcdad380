/**
 * Parses one PASCAL VOC annotation file (Annotations/<id>.xml) into plain data.
 *
 * Boxes are kept exactly as written in the XML: VOC coordinates are 1-based and inclusive
 * (a box covering only the top-left pixel is [1, 1, 1, 1]), and fractional values that some
 * VOC-style tools write are kept too. The official evaluation reads them with a +1 pixel
 * convention (width = xmax - xmin + 1): see src/eval/voc-map.ts. Nothing is clipped here;
 * the dataset loader decides what to do with boxes outside the image.
 *
 * Uses fast-xml-parser because workers have no DOMParser. Inner <part> elements (the person
 * layout annotations of VOC2012) and every other tag are ignored.
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';

export interface VocXmlObject {
  /** Class name as written (trimmed), e.g. "person". */
  name: string;
  /** [xmin, ymin, xmax, ymax], 1-based inclusive pixel coordinates as in the file. */
  bbox: [number, number, number, number];
  difficult: boolean;
  truncated: boolean;
}

export interface VocXmlAnnotation {
  /** The <filename> tag (an image name, e.g. "2007_000027.jpg"); '' when absent. */
  filename: string;
  width: number;
  height: number;
  depth?: number;
  objects: VocXmlObject[];
}

const parser = new XMLParser({
  // Strings only: a filename like "000001" must stay a string, and numbers are checked below.
  parseTagValue: false,
  ignoreAttributes: true,
  // One <object> parses to an object, several to an array; make it always an array.
  isArray: (_name, jPath) => jPath === 'annotation.object',
});

type Node = Record<string, unknown>;

const asNode = (v: unknown): Node | undefined => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Node) : undefined);
const text = (v: unknown): string | undefined => (typeof v === 'string' ? v.trim() : typeof v === 'number' ? String(v) : undefined);

/** "1" / "0" flags; VOC2012 omits <difficult> on some objects, which the devkit reads as 0. */
function flag(v: unknown): boolean {
  const t = text(v);
  if (t === undefined || t === '') return false;
  const n = Number(t);
  return Number.isFinite(n) ? n !== 0 : t.toLowerCase() === 'true';
}

/**
 * Parses VOC annotation XML text. `origin` names the file in error messages.
 * Throws when the XML is malformed, <size> is missing or not positive, or an object has no
 * name or a <bndbox> whose four coordinates are not all numbers.
 */
export function parseVocXml(xml: string, origin = 'annotation'): VocXmlAnnotation {
  const fail = (problem: string): never => {
    throw new Error(`${origin}: ${problem}`);
  };
  const valid = XMLValidator.validate(xml);
  if (valid !== true) {
    const { code, msg, line, col } = valid.err;
    fail(`malformed XML (${code} at line ${line}, column ${col}: ${msg}). Fix or remove the file.`);
  }
  const root = asNode(asNode(parser.parse(xml))?.annotation);
  if (!root) return fail('no <annotation> root element; this is not a VOC annotation file.');

  const size = asNode(root.size);
  if (!size) return fail('no <size> element; VOC annotations must give <size><width>, <height>.');
  const width = Number(text(size.width));
  const height = Number(text(size.height));
  if (!(width > 0 && height > 0 && Number.isFinite(width) && Number.isFinite(height))) {
    fail(`<size> gives width "${text(size.width) ?? ''}" and height "${text(size.height) ?? ''}"; both must be positive numbers.`);
  }
  const depthText = text(size.depth);
  const depth = depthText ? Number(depthText) : undefined;

  const rawObjects = Array.isArray(root.object) ? (root.object as unknown[]) : [];
  const objects = rawObjects.map((raw, i): VocXmlObject => {
    const where = `object #${i + 1}`;
    const obj = asNode(raw);
    if (!obj) return fail(`${where} is empty.`);
    const name = text(obj.name);
    if (!name) return fail(`${where} has no <name>.`);
    const bnd = asNode(obj.bndbox);
    if (!bnd) return fail(`${where} ("${name}") has no <bndbox>.`);
    const keys = ['xmin', 'ymin', 'xmax', 'ymax'] as const;
    const values = keys.map((k) => text(bnd[k]));
    const nums = values.map((v) => (v === undefined || v === '' ? NaN : Number(v)));
    if (!nums.every(Number.isFinite)) {
      const shown = keys.map((k, j) => `${k}="${values[j] ?? '(missing)'}"`).join(' ');
      fail(`${where} ("${name}") has a <bndbox> with non-numeric coordinates: ${shown}.`);
    }
    return {
      name,
      bbox: [nums[0]!, nums[1]!, nums[2]!, nums[3]!],
      difficult: flag(obj.difficult),
      truncated: flag(obj.truncated),
    };
  });

  const out: VocXmlAnnotation = { filename: text(root.filename) ?? '', width, height, objects };
  if (depth !== undefined && Number.isFinite(depth)) out.depth = depth;
  return out;
}
