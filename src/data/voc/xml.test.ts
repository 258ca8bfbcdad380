import { describe, expect, it } from 'vitest';
import { parseVocXml } from './xml';

const obj = (name: string, box: string[], difficult = '0', truncated = '0') =>
  `<object><name>${name}</name><pose>Unspecified</pose><truncated>${truncated}</truncated><difficult>${difficult}</difficult>` +
  `<bndbox><xmin>${box[0]}</xmin><ymin>${box[1]}</ymin><xmax>${box[2]}</xmax><ymax>${box[3]}</ymax></bndbox></object>`;
const ann = (body: string, size = '<size><width>500</width><height>375</height><depth>3</depth></size>') =>
  `<?xml version="1.0"?>\n<annotation><folder>VOC2007</folder><filename>000001.jpg</filename>${size}${body}</annotation>`;

describe('parseVocXml', () => {
  it('reads a single <object> as a one-element list, boxes as written (1-based)', () => {
    const a = parseVocXml(ann(obj('dog', ['48', '240', '195', '371'], '0', '1')), 'a.xml');
    expect(a).toEqual({
      filename: '000001.jpg', // a numeric-looking name stays a string
      width: 500,
      height: 375,
      depth: 3,
      objects: [{ name: 'dog', bbox: [48, 240, 195, 371], difficult: false, truncated: true }],
    });
  });

  it('reads many objects in order, fractional coordinates, and ignores VOC2012 <part> elements', () => {
    const person =
      '<object><name>person</name><difficult>1</difficult><bndbox><xmin>8.5</xmin><ymin>12</ymin><xmax>352</xmax><ymax>498</ymax></bndbox>' +
      '<part><name>head</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox></part></object>';
    const a = parseVocXml(ann(obj('dog', ['1', '2', '3', '4']) + person + obj('cat', ['5', '6', '7', '8'], '1')));
    expect(a.objects.map((o) => o.name)).toEqual(['dog', 'person', 'cat']);
    expect(a.objects[1]).toEqual({ name: 'person', bbox: [8.5, 12, 352, 498], difficult: true, truncated: false });
    expect(a.objects[2]!.difficult).toBe(true);
  });

  it('gives an empty list for an image with no objects, and no depth when absent', () => {
    const a = parseVocXml(ann('', '<size><width>10</width><height>20</height></size>'));
    expect(a.objects).toEqual([]);
    expect(a.depth).toBeUndefined();
    expect([a.width, a.height]).toEqual([10, 20]);
  });

  it('throws naming the file for malformed XML', () => {
    expect(() => parseVocXml('<annotation><size><width>3</width>', 'Annotations/bad.xml')).toThrow(/^Annotations\/bad\.xml: malformed XML/);
    expect(() => parseVocXml('<annotation></size>', 'x.xml')).toThrow(/x\.xml: malformed XML/);
  });

  it('throws for a missing <size>, a non-positive size, a non-numeric box, a missing name', () => {
    expect(() => parseVocXml('<annotation><filename>a.jpg</filename></annotation>', 'f.xml')).toThrow(/f\.xml: no <size>/);
    expect(() => parseVocXml(ann('', '<size><width>0</width><height>5</height></size>'), 'f.xml')).toThrow(/positive/);
    expect(() => parseVocXml(ann(obj('dog', ['1', 'abc', '3', '4'])), 'f.xml')).toThrow(/f\.xml: object #1 \("dog"\).*non-numeric.*ymin="abc"/);
    expect(() => parseVocXml(ann(obj('dog', ['1', '', '3', '4'])), 'f.xml')).toThrow(/non-numeric/);
    expect(() => parseVocXml(ann('<object><bndbox><xmin>1</xmin></bndbox></object>'), 'f.xml')).toThrow(/object #1 has no <name>/);
    expect(() => parseVocXml('<notvoc/>', 'f.xml')).toThrow(/no <annotation> root/);
  });
});
