// CRC-32 (IEEE 802.3, as zlib), slicing-by-8, in plain typed arrays so it runs in Node and in workerd alike.
// The frame checksum (shared/frame.ts); Node callers may pass zlib's native crc32 instead (same values).

export type Crc32Fn = (data: Uint8Array, init: number) => number;

const CRC_TABLES: Uint32Array[] = (() => {
  const t: Uint32Array[] = [];
  const t0 = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t0[n] = c >>> 0;
  }
  t.push(t0);
  for (let k = 1; k < 8; k++) {
    const tk = new Uint32Array(256);
    for (let n = 0; n < 256; n++) tk[n] = (t[k - 1][n] >>> 8) ^ t0[t[k - 1][n] & 0xff];
    t.push(tk);
  }
  return t;
})();

/** CRC-32 of `data` continuing from `init` (0 to start), same values as zlib.crc32 */
export function crc32(data: Uint8Array, init = 0): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = CRC_TABLES;
  let c = ~init >>> 0;
  let i = 0;
  const n = data.length;
  for (; i + 8 <= n; i += 8) {
    const a = (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24)) ^ c;
    c =
      t7[a & 0xff] ^ t6[(a >>> 8) & 0xff] ^ t5[(a >>> 16) & 0xff] ^ t4[a >>> 24] ^
      t3[data[i + 4]] ^ t2[data[i + 5]] ^ t1[data[i + 6]] ^ t0[data[i + 7]];
  }
  for (; i < n; i++) c = t0[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}
