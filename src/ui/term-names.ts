/**
 * Loss-term names as people read them. The trainer logs 'loss' (the total), '<method>' (the
 * method's loss as it adds to the total: weight × scale × its raw terms' combination) and
 * '<method>/<part>' (a raw part, before any weight), and the same for 'detection'.
 */
export interface TermLabel {
  kind: 'total' | 'weighted' | 'raw';
  text: string;
}

export function termLabel(name: string): TermLabel {
  if (name === 'loss') return { kind: 'total', text: 'total loss' };
  const slash = name.indexOf('/');
  if (slash < 0) return { kind: 'weighted', text: `${name} · weighted` };
  const method = name.slice(0, slash);
  const part = name.slice(slash + 1);
  return { kind: 'raw', text: `${method} › ${part === method ? `${part} term` : part} · raw` };
}

export const TERM_LEGEND = 'weighted: a method’s loss as it adds to the total (its weight and scale applied); raw: one part of it, before any weight.';
