// Webhook egress policy: where the edge may POST a tenant-chosen URL (an SSRF boundary). Checked when a job is
// created (400 on webhook_url) and again before every delivery (the policy may have changed since).
//
// The URL is parsed by the runtime's WHATWG URL parser, which already turns every IPv4 spelling (127.1, 0x7f000001,
// 2130706433, 0177.0.0.1, %31%32%37.0.0.1) into a dotted quad and compresses IPv6 ([::ffff:127.0.0.1] →
// [::ffff:7f00:1]); the checks below run on that normal form, so no spelling slips past them. Refused: anything but
// https (http too with WEBHOOK_ALLOW_HTTP=true, for local development), credentials in the URL, and hosts that are
// not globally routable — loopback, private, link-local (cloud metadata 169.254.169.254), CGNAT, unspecified,
// multicast, reserved and documentation ranges, IPv6 forms that embed such an IPv4 address, and the special-use
// names localhost, *.localhost, *.local, *.internal, *.home.arpa. A host name is not resolved here (Workers have no
// DNS API): on Cloudflare a name that resolves to a private address is not reachable from a Worker anyway; under
// `npm start` the dev server's outbound guard (scripts/startEdge.ts) resolves it and applies checkResolved().
//
// Configuration (vars): WEBHOOK_ALLOW_HTTP=true; WEBHOOK_ALLOW_HOSTS and WEBHOOK_DENY_HOSTS, comma-separated rules:
// a host name (`hooks.example.com`), a domain suffix with a leading dot (`.corp.example`), an IP address or a CIDR
// block (`10.1.0.0/16`, `fd00::/8`). An allow rule lets a matching host through the built-in refusals (e.g. a
// receiver on a private network); a deny rule refuses a host that would otherwise pass, and wins over allow.

export type EgressVars = { WEBHOOK_ALLOW_HTTP?: string; WEBHOOK_ALLOW_HOSTS?: string; WEBHOOK_DENY_HOSTS?: string };

type Rule = { kind: 'name'; name: string } | { kind: 'suffix'; suffix: string } | { kind: 'cidr'; bits: bigint; prefix: number; v6: boolean };

export type EgressPolicy = { allowHttp: boolean; allow: Rule[]; deny: Rule[] };

export type EgressCheck = { ok: true; url: URL } | { ok: false; reason: string };

const SPECIAL_NAMES = ['localhost', 'local', 'internal', 'home.arpa', 'localdomain'];

/** IPv4 blocks that are not globally routable (RFC 6890 and successors). */
const V4_BLOCKS = [
  '0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12', '192.0.0.0/24',
  '192.0.2.0/24', '192.88.99.0/24', '192.168.0.0/16', '198.18.0.0/15', '198.51.100.0/24', '203.0.113.0/24',
  '224.0.0.0/4', '240.0.0.0/4',
].map((c) => parseRule(c));

/** IPv6 blocks that are not globally routable (::/96: unspecified, loopback and the IPv4-compatible forms). */
const V6_BLOCKS = [
  '::/96', '::1/128', '100::/64', '2001::/23', '2001:db8::/32', 'fc00::/7', 'fe80::/10', 'fec0::/10', 'ff00::/8',
].map((c) => parseRule(c));

export function egressPolicy(env: EgressVars): EgressPolicy {
  const rules = (s: string | undefined) => (s ?? '').split(',').map((x) => x.trim()).filter(Boolean).map(parseRule);
  return { allowHttp: env.WEBHOOK_ALLOW_HTTP === 'true', allow: rules(env.WEBHOOK_ALLOW_HOSTS), deny: rules(env.WEBHOOK_DENY_HOSTS) };
}

/** Is `raw` a URL the edge may deliver webhooks to under `policy`? */
export function checkWebhookUrl(raw: string, policy: EgressPolicy): EgressCheck {
  let url: URL;
  try { url = new URL(raw); } catch { return { ok: false, reason: 'not an absolute URL' }; }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && policy.allowHttp))
    return { ok: false, reason: policy.allowHttp ? 'only http and https URLs are allowed' : 'only https URLs are allowed' };
  if (url.username || url.password) return { ok: false, reason: 'credentials in the URL are not allowed' };
  const host = url.hostname.toLowerCase().replace(/\.$/, '');
  const addr = parseIp(host);
  if (policy.deny.some((r) => matches(r, host, addr))) return { ok: false, reason: `host ${url.hostname} is denied by WEBHOOK_DENY_HOSTS` };
  if (policy.allow.some((r) => matches(r, host, addr))) return { ok: true, url };
  const why = addr ? nonPublicAddress(addr) : specialName(host);
  return why ? { ok: false, reason: `host ${url.hostname} is ${why}` } : { ok: true, url };
}

/**
 * For a runtime that resolves names itself (the local dev server): may `url`, whose host resolved to `address`, be
 * reached? A host that an allow rule names is trusted as configured; otherwise the address must pass like a literal.
 */
export function checkResolved(url: URL, address: string, policy: EgressPolicy): EgressCheck {
  const host = url.hostname.toLowerCase().replace(/\.$/, '');
  if (policy.allow.some((r) => r.kind !== 'cidr' && matches(r, host, undefined))) return { ok: true, url };
  const literal = new URL(url);
  literal.hostname = address.includes(':') ? `[${address}]` : address;
  const c = checkWebhookUrl(literal.href, policy);
  return c.ok ? { ok: true, url } : { ok: false, reason: `${url.hostname} resolves to ${address}: ${c.reason}` };
}

function specialName(host: string): string | undefined {
  if (host === '') return 'empty';
  const hit = SPECIAL_NAMES.find((n) => host === n || host.endsWith(`.${n}`));
  return hit && `a special-use name (.${hit}) that does not leave this network`;
}

type Ip = { v6: boolean; bits: bigint };

function nonPublicAddress(a: Ip): string | undefined {
  const blocks = a.v6 ? V6_BLOCKS : V4_BLOCKS;
  if (blocks.some((b) => matches(b, '', a))) return 'not a public address (loopback, private, link-local, metadata or reserved)';
  const embedded = a.v6 ? embeddedV4(a.bits) : undefined;
  return embedded && nonPublicAddress(embedded) && 'an IPv6 form of a non-public IPv4 address';
}

/** The IPv4 address inside IPv4-mapped (::ffff:a.b.c.d), NAT64 (64:ff9b::/96) and 6to4 (2002::/16) addresses. */
function embeddedV4(x: bigint): Ip | undefined {
  const top96 = x >> 32n;
  if (top96 === 0xffffn || top96 === 0x0064ff9b0000000000000000n) return { v6: false, bits: x & 0xffffffffn };
  if (x >> 112n === 0x2002n) return { v6: false, bits: (x >> 80n) & 0xffffffffn };
  return undefined;
}

function matches(r: Rule, host: string, addr: Ip | undefined): boolean {
  if (r.kind === 'name') return host === r.name;
  if (r.kind === 'suffix') return host.endsWith(r.suffix);
  if (!addr || addr.v6 !== r.v6) return false;
  const width = r.v6 ? 128 : 32;
  const shift = BigInt(width - r.prefix);
  return addr.bits >> shift === r.bits >> shift;
}

function parseRule(s: string): Rule {
  const t = s.toLowerCase();
  if (t.startsWith('.')) return { kind: 'suffix', suffix: t };
  const [ip, len] = t.split('/');
  const a = parseIp(ip.replace(/^\[|\]$/g, ''));
  if (!a) {
    if (len !== undefined || !/^[a-z0-9.-]+$/.test(t)) throw new Error(`egress rule ${JSON.stringify(s)} is neither a host name, .suffix, IP address nor CIDR block`);
    return { kind: 'name', name: t };
  }
  const width = a.v6 ? 128 : 32;
  const prefix = len === undefined ? width : Number(len);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > width) throw new Error(`egress rule ${JSON.stringify(s)}: bad prefix length`);
  return { kind: 'cidr', bits: a.bits, prefix, v6: a.v6 };
}

/**
 * A host in the URL parser's normal form (dotted-quad IPv4, or bracketed IPv6) as bits; undefined for a name. IPv6
 * is re-read through the URL parser so that rule strings are understood exactly like URL hosts.
 */
function parseIp(host: string): Ip | undefined {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  if (v4) {
    const o = v4.slice(1).map(Number);
    return o.every((n) => n <= 255) ? { v6: false, bits: BigInt(((o[0] << 24) >>> 0) + (o[1] << 16) + (o[2] << 8) + o[3]) } : undefined;
  }
  const inner = host.replace(/^\[|\]$/g, '');
  if (!inner.includes(':')) return undefined;
  let norm: string;
  try { norm = new URL(`http://[${inner}]/`).hostname.slice(1, -1); } catch { return undefined; }
  const [head, tail] = norm.includes('::') ? norm.split('::') : [norm, undefined];
  const hs = head ? head.split(':') : [];
  const ts = tail ? tail.split(':') : [];
  const groups = tail === undefined ? hs : [...hs, ...Array<string>(8 - hs.length - ts.length).fill('0'), ...ts];
  if (groups.length !== 8) return undefined;
  return { v6: true, bits: groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n) };
}
