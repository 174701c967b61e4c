// Single byte-range parsing (RFC 9110 §14.1.2). Multi-range and malformed headers are answered 416, explicitly.
export type RangeResult = { kind: 'none' } | { kind: 'range'; offset: number; length: number } | { kind: 'invalid'; reason: string };

export function parseRange(header: string | null, size: number): RangeResult {
  if (header === null) return { kind: 'none' };
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return { kind: 'invalid', reason: `unsupported Range ${JSON.stringify(header.slice(0, 100))}: only one "bytes=a-b" range is served` };
  const [, a, b] = m;
  if (a === '' && b === '') return { kind: 'invalid', reason: 'Range "bytes=-" names no bytes' };
  if (a === '') {
    const n = Number(b);
    if (n === 0 || size === 0) return { kind: 'invalid', reason: `suffix range of ${n} bytes is unsatisfiable for ${size} bytes` };
    const len = Math.min(n, size);
    return { kind: 'range', offset: size - len, length: len };
  }
  const start = Number(a);
  const end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  if (!Number.isSafeInteger(start) || start >= size || (b !== '' && Number(b) < start))
    return { kind: 'invalid', reason: `range ${a}-${b} is unsatisfiable for ${size} bytes` };
  return { kind: 'range', offset: start, length: end - start + 1 };
}
