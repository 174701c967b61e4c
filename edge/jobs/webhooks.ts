// Webhook outbox: rows written in the same transaction as the state change, delivered by the DO alarm with
// exponential backoff (base · 2^(attempt-1)), signed with the key's webhook secret. Each delivery re-checks the egress
// policy (auth/egress.ts) and does not follow redirects (a 3xx would carry the signed body elsewhere); both refusals
// are final, not retried.
import { signWebhook, type WebhookEvent } from '../../shared/api/webhooks.ts';
import type { Video, WebhookEventType } from '../../shared/api/videos.ts';
import { randomHex } from '../auth/apiKey.ts';
import { checkWebhookUrl, type EgressPolicy } from '../auth/egress.ts';

export type WebhookRow = {
  id: string;
  job_id: string;
  key_id: string;
  url: string;
  body: string;
  attempts: number;
  next_at: number;
  status: string;
  last_error: string | null;
};

export function enqueueWebhook(sql: SqlStorage, keyId: string, url: string, type: WebhookEventType, video: Video, now: number): void {
  const id = `evt_${randomHex(16)}`;
  const event: WebhookEvent = {
    id,
    object: 'event',
    type,
    created_at: Math.floor(now / 1000),
    data: video,
  };
  sql.exec(
    "INSERT INTO webhooks (id, job_id, key_id, url, body, attempts, next_at, status) VALUES (?,?,?,?,?,0,?,'pending')",
    id, video.id, keyId, url, JSON.stringify(event), now,
  );
}

/** Delivers every due webhook once; returns nothing, rows carry the outcome and the next attempt time. */
export async function deliverDue(
  sql: SqlStorage,
  now: number,
  opts: { maxAttempts: number; backoffMs: number; egress: EgressPolicy; timeoutMs?: number },
): Promise<void> {
  const due = sql.exec<WebhookRow>("SELECT * FROM webhooks WHERE status = 'pending' AND next_at <= ? ORDER BY next_at LIMIT 20", now).toArray();
  await Promise.all(
    due.map(async (w) => {
      const secret = sql.exec<{ webhook_secret: string }>('SELECT webhook_secret FROM keys WHERE id = ?', w.key_id).toArray()[0]?.webhook_secret;
      let error: string | null = null;
      let final = !secret;
      const allowed = checkWebhookUrl(w.url, opts.egress);
      if (!secret) error = 'key no longer exists';
      else if (!allowed.ok) {
        error = `refused by the egress policy: ${allowed.reason}`;
        final = true;
      } else {
        try {
          const ts = Math.floor(Date.now() / 1000);
          const res = await fetch(w.url, {
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              'user-agent': 'uvit-webhooks/1',
              'webhook-id': w.id,
              'webhook-timestamp': String(ts),
              'webhook-signature': await signWebhook(secret, w.id, ts, w.body),
            },
            body: w.body,
            redirect: 'manual',
            signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
          });
          await res.body?.cancel();
          if (res.status >= 300 && res.status < 400) {
            error = `HTTP ${res.status}: redirects are not followed`;
            final = true;
          } else if (!res.ok) error = `HTTP ${res.status}`;
        } catch (e) {
          error = e instanceof Error ? e.message : String(e);
        }
      }
      const attempts = w.attempts + 1;
      if (error === null) sql.exec("UPDATE webhooks SET status = 'delivered', attempts = ?, last_error = NULL WHERE id = ?", attempts, w.id);
      else if (attempts >= opts.maxAttempts || final)
        sql.exec("UPDATE webhooks SET status = 'gave_up', attempts = ?, last_error = ? WHERE id = ?", attempts, error, w.id);
      else
        sql.exec('UPDATE webhooks SET attempts = ?, last_error = ?, next_at = ? WHERE id = ?',
          attempts, error, Date.now() + opts.backoffMs * 2 ** (attempts - 1), w.id);
    }),
  );
}
