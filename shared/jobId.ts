// Job ids on the wire: 16 bytes (32 hex chars) in every frame header (shared/frame.ts).

/** 16-byte job id as 32 hex chars: a UUID or 32-hex string is kept; anything else is hashed (FNV-1a 128-bit) */
export function jobIdOf(id: string): string {
  const hex = id.replace(/-/g, '').toLowerCase();
  if (/^[0-9a-f]{32}$/.test(hex)) return hex;
  let h = 0x6c62272e07bb014262b821756295c58dn;
  const prime = 0x0000000001000000000000000000013bn;
  const mask = (1n << 128n) - 1n;
  for (const b of new TextEncoder().encode(id)) h = ((h ^ BigInt(b)) * prime) & mask;
  return h.toString(16).padStart(32, '0');
}
