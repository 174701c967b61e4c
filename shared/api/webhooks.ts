// Webhook events and their signature (Standard Webhooks layout: webhook-id / webhook-timestamp / webhook-signature
// "v1,<base64 HMAC-SHA256(secret, id.timestamp.body)>"). Runtime-agnostic so clients can verify with the same code.
import * as z from 'zod';
import { Video, WebhookEventType } from './videos.ts';

export const WebhookEvent = z
  .object({
    id: z.string(),
    object: z.literal('event'),
    type: WebhookEventType,
    created_at: z.number().int(),
    data: Video,
  })
  .meta({ id: 'WebhookEvent' });
export type WebhookEvent = z.infer<typeof WebhookEvent>;

export const WEBHOOK_TOLERANCE_S = 300;
const enc = new TextEncoder();

function b64(bytes: ArrayBuffer): string {
  let s = '';
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s);
}

function secretBytes(secret: string): Uint8Array<ArrayBuffer> {
  const raw = secret.startsWith('whsec_') ? secret.slice(6) : secret;
  const bin = atob(raw);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export async function signWebhook(secret: string, id: string, timestamp: number, body: string): Promise<string> {
  const key = await crypto.subtle.importKey('raw', secretBytes(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return `v1,${b64(await crypto.subtle.sign('HMAC', key, enc.encode(`${id}.${timestamp}.${body}`)))}`;
}

/** True when one of the space-separated signatures matches and the timestamp is within tolerance. */
export async function verifyWebhook(
  secret: string,
  headers: { get(name: string): string | null },
  body: string,
  nowS: number = Math.floor(Date.now() / 1000),
): Promise<boolean> {
  const id = headers.get('webhook-id');
  const ts = headers.get('webhook-timestamp');
  const sigs = headers.get('webhook-signature');
  if (!id || !ts || !sigs || !/^\d+$/.test(ts)) return false;
  if (Math.abs(nowS - Number(ts)) > WEBHOOK_TOLERANCE_S) return false;
  const expected = await signWebhook(secret, id, Number(ts), body);
  let ok = false;
  for (const s of sigs.split(' ')) {
    if (s.length !== expected.length) continue;
    let d = 0;
    for (let i = 0; i < s.length; i++) d |= s.charCodeAt(i) ^ expected.charCodeAt(i);
    ok ||= d === 0;
  }
  return ok;
}
