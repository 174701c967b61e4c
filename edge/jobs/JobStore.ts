// The JobStore Durable Object (SQLite): API keys, jobs (queued → in_progress → completed | failed | cancelled),
// leases with alarm-driven expiry, dedup index by params hash, webhook outbox, SSE fan-out, retention. A key and
// its jobs live in one store, so every read is strongly consistent and each public request costs a single RPC
// (auth + work together).
import { DurableObject } from 'cloudflare:workers';
import type { CreateKeyRequest } from '../../shared/api/keys.ts';
import { DEFAULT_WEBHOOK_EVENTS, type ListQuery, type Video, type VideoList, type WebhookEventType } from '../../shared/api/videos.ts';
import type { Artifact, FailRequest, HeartbeatRequest, HeartbeatResponse, LeaseGrant, LeaseRequest } from '../../shared/lease.ts';
import type { PresentedKey } from '../auth/apiKey.ts';
import { egressPolicy } from '../auth/egress.ts';
import { reply } from '../http/reply.ts';
import { intVar, type Vars } from '../vars.ts';
import { cdnPath, extOf } from '../cache/cdnToken.ts';
import { findModel } from '../models.ts';
import { type ContentRef, contentRef, dropJobArtifacts, jobArtifact, jobArtifacts, mismatch, primary, recordUpload, referenced, setJobArtifacts } from './artifacts.ts';
import { createKey, listKeys, revokeKey, verifyKey } from './keys.ts';
import { findUpload, insertUpload, type NewUpload, recordPart, type StoredPart, type UploadRow } from './uploads.ts';
import { RateLimiter } from './rateLimit.ts';
import { createJob, findResult, ownerScope, recordResult, SHARED_SCOPE, type ResultHit } from './create.ts';
import { claim, expiredLeases, nextWakeup, queueStats, registerGroup, requeueOrFail } from './leases.ts';
import { sweepExpired } from './retention.ts';
import { shardCount, shardName, shardOfText, shardPrefix } from './shards.ts';
import { migrate, type JobRow, type KeyRow } from './schema.ts';
import { SseHub } from './sse.ts';
import { fail, type CreateInput, type QueueStats, type RateInfo, type Result } from './types.ts';
import { TERMINAL, toVideo } from './videoRow.ts';
import { type ImageJobView, isImageJob, toImageJob } from './imageRow.ts';
import { Waiters } from './waiters.ts';
import { deliverDue, enqueueWebhook } from './webhooks.ts';

function subscribed(r: JobRow, type: WebhookEventType): boolean {
  return (r.webhook_events ? (JSON.parse(r.webhook_events) as string[]) : DEFAULT_WEBHOOK_EVENTS).includes(type);
}

/** A store's env: the vars, and the namespace of its sibling shards (content shared across shards is freed only
 * when no shard references it). */
type StoreEnv = Vars & { JOBS: DurableObjectNamespace<JobStore> };

export class JobStore extends DurableObject<StoreEnv> {
  private sql: SqlStorage;
  private limiter = new RateLimiter();
  private sse = new SseHub();
  private waiters = new Waiters();
  /** requests waiting for a job to finish (POST /v1/images/generations), by job id */
  private finished = new Waiters();
  private nonceCalls = 0;
  private calls = 0;
  private readonly started = Date.now();
  private selfShard: number | undefined;

  constructor(ctx: DurableObjectState, env: StoreEnv) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    migrate(this.sql);
  }

  private get leaseTtl() { return intVar(this.env.LEASE_TTL_MS, 30_000); }
  private get maxAttempts() { return intVar(this.env.MAX_ATTEMPTS, 3); }

  /** Counts an RPC into this store (for stats(): the per-shard load a sharding test and bench:edge read). */
  private hop(): void {
    this.calls++;
  }

  /** RPC calls served since this instance started (at `started`: an idle object is evicted, and counts anew), and its queue depth. */
  stats(): { calls: number; started: number; queued: number; in_progress: number } {
    const q = this.sql.exec<{ queued: number; in_progress: number }>(
      "SELECT coalesce(sum(status = 'queued'), 0) AS queued, coalesce(sum(status = 'in_progress'), 0) AS in_progress FROM jobs").one();
    return { calls: this.calls, started: this.started, ...q };
  }

  private get shards(): number { return shardCount(this.env); }

  /** This store's shard index, found by comparing ids (a Durable Object is not told the name it was made from). */
  private get shard(): number {
    this.selfShard ??= Array.from({ length: this.shards }, (_, i) => i)
      .find((i) => this.env.JOBS.idFromName(shardName(i)).equals(this.ctx.id)) ?? 0;
    return this.selfShard;
  }

  private peer(i: number): DurableObjectStub<JobStore> {
    return this.env.JOBS.get(this.env.JOBS.idFromName(shardName(i)));
  }

  /** How long a finished video of this key and model is kept: the key's TTL, else the model's, else RESULT_TTL_S. */
  private ttlMs(keyId: string, model: string): number {
    const k = this.sql.exec<{ result_ttl_s: number | null }>('SELECT result_ttl_s FROM keys WHERE id = ?', keyId).toArray()[0];
    const s = k?.result_ttl_s ?? findModel(this.env, model)?.result_ttl_seconds ?? intVar(this.env.RESULT_TTL_S, 7 * 86_400);
    return s * 1000;
  }

  /** The CDN path of content kept until `expiresAt` (null without CDN_SECRET). */
  private async cdnPathFor(a: Pick<Artifact, 'sha256' | 'content_type'>, expiresAt: number): Promise<string | null> {
    return this.env.CDN_SECRET ? cdnPath(this.env.CDN_SECRET, a.sha256, Math.floor(expiresAt / 1000), extOf(a.content_type)) : null;
  }

  /**
   * The CDN paths of a result kept until `expiresAt`, as a job row stores them: its primary artifact's (cdn_path) and
   * its variants', every other artifact by name (variant_cdn, JSON). Both null without CDN_SECRET.
   */
  private async resultCdn(artifacts: Artifact[], expiresAt: number): Promise<{ cdnPath: string | null; variantCdn: string | null }> {
    const main = primary(artifacts);
    const paths = await Promise.all(artifacts.map(async (a) => [a.name, await this.cdnPathFor(a, expiresAt)] as const));
    const variants = paths.filter(([name]) => name !== main.name);
    return {
      cdnPath: paths.find(([name]) => name === main.name)![1],
      variantCdn: this.env.CDN_SECRET ? JSON.stringify(Object.fromEntries(variants)) : null,
    };
  }

  // ------------------------------------------------------------------ auth

  private auth(p: PresentedKey, scope: string): Result<KeyRow> & { rate?: RateInfo } {
    const v = verifyKey(this.sql, p, scope);
    if (!v.ok) return v;
    const { retryAfter, ...rate } = this.limiter.take(v.key.id, v.key.rate_per_min, Date.now());
    if (retryAfter > 0)
      return { ...fail(429, 'rate_limited', `Rate limit of ${v.key.rate_per_min} requests/min exceeded; retry in ${retryAfter} s.`, retryAfter), rate };
    return { ok: true, value: v.key, rate };
  }

  /**
   * Runs `fn` (sync or async) for an authenticated key; the answer carries the key's rate-limit state either way.
   * A refusal comes back at once, so an async `fn`'s caller awaits a value or a promise.
   */
  private authed<T>(p: PresentedKey, scope: string, fn: (key: KeyRow) => Result<T>): Result<T>;
  private authed<T>(p: PresentedKey, scope: string, fn: (key: KeyRow) => Promise<Result<T>>): Result<T> | Promise<Result<T>>;
  private authed<T>(p: PresentedKey, scope: string, fn: (key: KeyRow) => Result<T> | Promise<Result<T>>): Result<T> | Promise<Result<T>> {
    const a = this.auth(p, scope);
    if (!a.ok) return a;
    const r = fn(a.value);
    return r instanceof Promise ? r.then((v) => ({ ...v, rate: a.rate })) : { ...r, rate: a.rate };
  }

  private own(keyId: string, id: string): JobRow | undefined {
    return this.sql.exec<JobRow>('SELECT * FROM jobs WHERE id = ? AND key_id = ?', id, keyId).toArray()[0];
  }

  /** The key's own video `id`; 404 for any other key's, and for image jobs (their routes are /v1/images). */
  private mine(key: KeyRow, id: string): Result<JobRow> {
    const r = this.own(key.id, id);
    return r && !isImageJob(r) ? { ok: true, value: r } : fail(404, 'video_not_found', `No video with id ${JSON.stringify(id)} for this API key.`);
  }

  /** Runs `fn` on the presented key's own video `id` (auth and rate limit first). */
  private owned<T>(p: PresentedKey, scope: string, id: string, fn: (row: JobRow, key: KeyRow) => Result<T>): Result<T> {
    return this.authed(p, scope, (key) => {
      const m = this.mine(key, id);
      return m.ok ? fn(m.value, key) : m;
    });
  }

  // ------------------------------------------------------------------ admin

  adminCreateKey(req: CreateKeyRequest) {
    this.hop();
    return createKey(this.sql, req, Date.now(), shardPrefix(this.shard));
  }

  /**
   * Revocation is immediate: the next request with the key gets 401, its open event streams end, its queued and
   * running jobs are cancelled (a running job's driver is told so at its next heartbeat and stops), and its
   * undelivered webhooks are dropped.
   */
  async adminRevokeKey(id: string) {
    this.hop();
    const k = revokeKey(this.sql, id, Date.now());
    if (!k) return k;
    // streams end first: nothing after the revocation, not even the cancellation, reaches the key
    for (const r of this.sql.exec<{ id: string }>('SELECT id FROM jobs WHERE key_id = ?', id).toArray()) this.sse.end(r.id);
    for (const r of this.sql.exec<JobRow>("SELECT * FROM jobs WHERE key_id = ? AND status IN ('queued', 'in_progress')", id).toArray())
      this.cancelRow(r);
    this.sql.exec("UPDATE webhooks SET status = 'gave_up', last_error = 'key revoked' WHERE key_id = ? AND status = 'pending'", id);
    await this.scheduleAlarm();
    return k;
  }
  adminListKeys() {
    this.hop();
    return listKeys(this.sql);
  }

  // ------------------------------------------------------------------ public API

  async createVideo(p: PresentedKey, input: CreateInput): Promise<Result<{ video: Video; replayed: boolean }>> {
    this.hop();
    return this.authed(p, 'videos:write', async (key): Promise<Result<{ video: Video; replayed: boolean }>> => {
      // A reusable result gets its own expiry and CDN path, signed before the synchronous create (which checks
      // the result is still there).
      const hash = input.spec.params_hash;
      const local = input.seedGiven ? findResult(this.sql, ownerScope(key), hash) : undefined;
      const hit = local ?? (input.seedGiven && key.share_results === 1 ? await this.sharedHit(hash) : undefined);
      let reuse = null;
      if (hit) {
        const expiresAt = Date.now() + this.ttlMs(key.id, input.spec.model);
        reuse = { hit, local: local !== undefined, expiresAt, ...(await this.resultCdn(hit.artifacts, expiresAt)) };
      }
      // MAX_QUEUE bounds all shards together: each holds its share
      const maxQueue = Math.ceil(intVar(this.env.MAX_QUEUE, 1000) / this.shards);
      const r = createJob(this.sql, key, input, maxQueue, Date.now(), reuse);
      if (!r.ok) return r;
      if (r.value.queued) this.wake(r.value.row.model);
      if (r.value.row.status === 'completed' && !r.value.replayed) await this.scheduleAlarm();
      return { ok: true, value: { video: toVideo(r.value.row), replayed: r.value.replayed } };
    });
  }

  getVideo(p: PresentedKey, id: string): Result<Video> {
    this.hop();
    return this.owned(p, 'videos:read', id, (r) => ({ ok: true, value: toVideo(r) }));
  }

  listVideos(p: PresentedKey, q: ListQuery): Result<VideoList> {
    this.hop();
    return this.authed(p, 'videos:read', (key) => {
      let cursor = q.order === 'desc' ? Number.MAX_SAFE_INTEGER : 0;
      if (q.after) {
        const r = this.own(key.id, q.after);
        if (!r) return fail(400, 'invalid_cursor', `after=${JSON.stringify(q.after)} is not one of this key's videos.`);
        cursor = r.seq;
      }
      const rows = this.sql.exec<JobRow>(
        `SELECT * FROM jobs WHERE key_id = ? AND substr(id, 1, 6) = 'video_' AND seq ${q.order === 'desc' ? '<' : '>'} ? ORDER BY seq ${q.order === 'desc' ? 'DESC' : 'ASC'} LIMIT ?`,
        key.id, cursor, q.limit + 1).toArray();
      const data = rows.slice(0, q.limit).map(toVideo);
      return { ok: true, value: { object: 'list', data, has_more: rows.length > q.limit, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null } };
    });
  }

  async cancelVideo(p: PresentedKey, id: string): Promise<Result<Video>> {
    this.hop();
    const r = this.owned<Video>(p, 'videos:write', id, (row) => {
      if (TERMINAL.has(row.status)) return fail(409, 'video_not_cancellable', `Video ${id} is already ${row.status}.`);
      this.cancelRow(row);
      return { ok: true, value: toVideo(this.row(id)) };
    });
    if (r.ok) await this.scheduleAlarm();
    return r;
  }

  /** `purge`: the CDN paths of the video's artifacts, for the route to evict from the cache (content is freed if unreferenced). */
  async deleteVideo(p: PresentedKey, id: string): Promise<Result<{ id: string; purge: string[] }>> {
    this.hop();
    return this.authed(p, 'videos:write', async (key): Promise<Result<{ id: string; purge: string[] }>> => {
      const m = this.mine(key, id);
      if (!m.ok) return m;
      const r = m.value;
      if (!TERMINAL.has(r.status)) this.cancelRow(r);
      const artifacts = jobArtifacts(this.sql, id);
      const content = dropJobArtifacts(this.sql, id);
      this.sql.exec('DELETE FROM jobs WHERE id = ?', id);
      this.sql.exec('DELETE FROM webhooks WHERE job_id = ?', id);
      this.sse.end(id);
      for (const c of content) await this.releaseContent(c);
      const purge = r.expires_at === null ? [] : await Promise.all(artifacts.map((a) => this.cdnPathFor(a, r.expires_at!)));
      return { ok: true, value: { id, purge: purge.filter((x): x is string => x !== null) } };
    });
  }

  /** The stored artifact `variant` of the key's completed video `id`. */
  contentOf(p: PresentedKey, id: string, variant: string): Result<{ artifact: Artifact; expiresAt: number | null }> {
    this.hop();
    return this.owned(p, 'videos:read', id, (r) => {
      if (r.status !== 'completed')
        return fail(409, 'video_not_ready', `Video ${id} is ${r.status}; its content exists only once it is completed.`);
      const a = jobArtifact(this.sql, id, variant);
      if (!a) {
        const have = jobArtifacts(this.sql, id).map((x) => x.name).join(', ');
        return fail(404, 'variant_not_found', `Video ${id} has no ${variant} variant (it has: ${have || 'none'}).`);
      }
      return { ok: true, value: { artifact: a, expiresAt: r.expires_at } };
    });
  }

  /**
   * The key's image job `id` (404 for anything else), as soon as it has finished or after `waitMs`, whichever comes
   * first; completed, with its PNGs and their CDN paths.
   */
  async imageJob(p: PresentedKey, id: string, waitMs: number): Promise<Result<ImageJobView>> {
    this.hop();
    const a = this.auth(p, 'videos:read');
    if (!a.ok) return a;
    const find = () => {
      const r = this.own(a.value.id, id);
      return r && isImageJob(r) ? r : undefined;
    };
    const deadline = Date.now() + waitMs;
    let r = find();
    while (r && !TERMINAL.has(r.status) && Date.now() < deadline) {
      await this.finished.wait(id, deadline - Date.now());
      r = find();
    }
    if (!r) return { ...fail(404, 'image_not_found', `No image generation with id ${JSON.stringify(id)} for this API key.`), rate: a.rate };
    const row = r;
    const images = row.status !== 'completed' || row.expires_at === null ? [] : await Promise.all(
      jobArtifacts(this.sql, id).map(async (x) => ({ ...x, cdn_path: await this.cdnPathFor(x, row.expires_at!) })));
    return { ok: true, value: toImageJob(row, images), rate: a.rate };
  }

  modelsView(p: PresentedKey): Result<Record<string, number>> {
    this.hop();
    return this.authed(p, 'videos:read', () => {
      const rows = this.sql.exec<{ model: string; n: number }>('SELECT model, count(*) AS n FROM groups WHERE last_seen > ? GROUP BY model', Date.now() - 60_000).toArray();
      return { ok: true, value: Object.fromEntries(rows.map((r) => [r.model, r.n])) };
    });
  }

  /** SSE: GET https://do/events/<id> with the presented key in x-key-id / x-key-hash and the public origin in x-origin. */
  override async fetch(req: Request): Promise<Response> {
    this.hop();
    const id = new URL(req.url).pathname.split('/')[2] ?? '';
    const p: PresentedKey = { keyId: req.headers.get('x-key-id') ?? '', keyHash: req.headers.get('x-key-hash') ?? '' };
    const o = this.owned(p, 'videos:read', id, (r) => ({ ok: true, value: r }));
    // the HTTP response itself, refusal or stream, so the route passes it on unchanged
    return reply(o, (row) =>
      new Response(this.sse.open(toVideo(row), req.headers.get('x-origin') ?? ''), {
        headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' },
      }));
  }

  /** Queue depth per model (for autoscalers): queued / in_progress jobs and groups seen in the last minute. */
  queueStats(model: string | null): QueueStats[] {
    this.hop();
    return queueStats(this.sql, model, Date.now());
  }

  // ------------------------------------------------------------------ lease API (backends)

  useNonce(nonce: string, ttlMs: number): boolean {
    this.hop();
    const now = Date.now();
    if (++this.nonceCalls % 100 === 0) this.sql.exec('DELETE FROM nonces WHERE expires < ?', now);
    const fresh = this.sql.exec('INSERT OR IGNORE INTO nonces (nonce, expires) VALUES (?, ?)', nonce, now + ttlMs).rowsWritten > 0;
    if (fresh) return true;
    const stale = this.sql.exec<{ expires: number }>('SELECT expires FROM nonces WHERE nonce = ?', nonce).one().expires < now;
    if (stale) this.sql.exec('UPDATE nonces SET expires = ? WHERE nonce = ?', now + ttlMs, nonce);
    return stale;
  }

  /** Long-poll for one queued job of req.model in this shard; null after waitMs. */
  async lease(req: LeaseRequest, waitMs: number): Promise<LeaseGrant | null> {
    this.hop();
    const deadline = Date.now() + waitMs;
    for (;;) {
      registerGroup(this.sql, req, Date.now());
      const grant = this.claim(req);
      if (grant) {
        await this.ensureAlarm(this.queueWebhook(grant.job.id, 'video.in_progress') ? Date.now() : grant.expires_at);
        return grant;
      }
      const left = deadline - Date.now();
      if (left <= 0) return null;
      await this.waiters.wait(req.model, left);
    }
  }

  private claim(req: LeaseRequest): LeaseGrant | null {
    const c = claim(this.sql, req, this.leaseTtl, Date.now(), this.shard);
    if (c) this.publish(c.row.id);
    return c?.grant ?? null;
  }

  private leased(leaseId: string): Result<JobRow> {
    const r = this.sql.exec<JobRow>('SELECT * FROM jobs WHERE lease_id = ?', leaseId).toArray()[0];
    if (!r) return fail(409, 'lease_lost', `Lease ${leaseId} is not held: it expired and the job was requeued, or the video was deleted.`);
    return { ok: true, value: r };
  }

  async heartbeat(leaseId: string, hb: HeartbeatRequest): Promise<Result<HeartbeatResponse>> {
    this.hop();
    const l = this.leased(leaseId);
    if (!l.ok) return l;
    const r = l.value;
    if (r.status === 'cancelled') return { ok: true, value: { expires_at: 0, cancel: true } };
    if (r.status !== 'in_progress') return fail(409, 'lease_lost', `Video ${r.id} is ${r.status}; lease ${leaseId} is over.`);
    const now = Date.now();
    const expires = now + this.leaseTtl;
    const progress = Math.max(r.progress, Math.min(99, hb.progress));
    this.sql.exec('UPDATE jobs SET lease_expires = ?, progress = ? WHERE id = ?', expires, progress, r.id);
    if (progress !== r.progress) {
      this.publish(r.id);
      // progress webhooks only on request, and at most one per WEBHOOK_PROGRESS_MIN_MS per video
      const due = r.hook_progress_at === null || now - r.hook_progress_at >= intVar(this.env.WEBHOOK_PROGRESS_MIN_MS, 10_000);
      if (due && this.queueWebhook(r.id, 'video.progress')) {
        this.sql.exec('UPDATE jobs SET hook_progress_at = ? WHERE id = ?', now, r.id);
        await this.ensureAlarm(now);
      }
    }
    return { ok: true, value: { expires_at: expires, cancel: false } };
  }

  /** Pre-upload check, so a stale or cancelled lease's bytes are refused before they are streamed. */
  checkLease(leaseId: string): Result<{ id: string }> {
    this.hop();
    const h = this.held(leaseId);
    return h.ok ? { ok: true, value: { id: h.value.id } } : h;
  }

  /** The row of a lease that is still in progress. */
  private held(leaseId: string): Result<JobRow> {
    const l = this.leased(leaseId);
    if (!l.ok) return l;
    if (l.value.status !== 'in_progress') return fail(409, 'lease_lost', `Video ${l.value.id} is ${l.value.status}; result refused.`);
    return l;
  }

  /** Records an artifact verified into R2 under a lease still held, for its POST complete (ending its multipart upload). */
  recordArtifact(leaseId: string, a: Artifact, uploadId?: string): Result<{ id: string }> {
    this.hop();
    const h = this.held(leaseId);
    if (!h.ok) return h;
    recordUpload(this.sql, leaseId, a);
    if (uploadId) this.sql.exec('DELETE FROM uploads WHERE upload_id = ?', uploadId);
    return { ok: true, value: { id: h.value.id } };
  }

  // Multipart uploads (uploads.ts): the route streams each part into R2; the store keeps their order and hash state.

  startUpload(u: NewUpload): Result<{ id: string }> {
    this.hop();
    const h = this.held(u.lease_id);
    if (!h.ok) return h;
    insertUpload(this.sql, u);
    return { ok: true, value: { id: h.value.id } };
  }

  upload(leaseId: string, name: string, uploadId: string): Result<UploadRow> {
    this.hop();
    const h = this.held(leaseId);
    return h.ok ? findUpload(this.sql, leaseId, name, uploadId) : h;
  }

  recordPart(leaseId: string, uploadId: string, p: StoredPart): Result<{ next: number }> {
    this.hop();
    const h = this.held(leaseId);
    return h.ok ? recordPart(this.sql, uploadId, p) : h;
  }

  /** Forgets an upload whose whole did not hash right (its staging object is deleted by the route). */
  dropUpload(uploadId: string): void {
    this.hop();
    this.sql.exec('DELETE FROM uploads WHERE upload_id = ?', uploadId);
  }

  /**
   * Completes the lease's job with `artifacts`, each recorded by recordArtifact first or in `verified` (uploaded in
   * this same request: the PUT result shorthand). All or nothing: a missing or different artifact completes nothing.
   */
  async complete(leaseId: string, artifacts: Artifact[], verified: Artifact[] = []): Promise<Result<{ id: string; primary: Artifact }>> {
    this.hop();
    // A stale lease's upload may leave an unreferenced object; it is not deleted here because a concurrent valid
    // lease may be completing with the same bytes.
    const first = this.held(leaseId);
    if (!first.ok) return first;
    for (const a of verified) recordUpload(this.sql, leaseId, a);
    const wrong = mismatch(this.sql, leaseId, artifacts);
    if (wrong) return fail(422, 'artifacts_mismatch', `Cannot complete video ${first.value.id}: ${wrong}.`);
    const main = primary(artifacts);
    const expiresAt = Date.now() + this.ttlMs(first.value.key_id, first.value.model);
    const cdn = await this.resultCdn(artifacts, expiresAt);
    // Checked again after the await: a second completion of the same lease (a retried PUT) may have run meanwhile.
    const h = this.held(leaseId);
    if (!h.ok) return h;
    const r = h.value;
    const now = Date.now();
    this.sql.exec(
      `UPDATE jobs SET status = 'completed', progress = 100, completed_at = ?, lease_expires = NULL, content_sha256 = ?, bytes = ?,
         cdn_path = ?, variant_cdn = ?, expires_at = ? WHERE id = ?`,
      now, main.sha256, main.bytes, cdn.cdnPath, cdn.variantCdn, expiresAt, r.id);
    setJobArtifacts(this.sql, r.id, artifacts);
    this.sql.exec('DELETE FROM lease_artifacts WHERE lease_id = ?', leaseId);
    const hit = { sha256: main.sha256, bytes: main.bytes, artifacts };
    const key = this.sql.exec<KeyRow>('SELECT * FROM keys WHERE id = ?', r.key_id).toArray()[0];
    if (key) recordResult(this.sql, ownerScope(key), r.params_hash, hit, now);
    await this.terminal(r.id);
    if (key?.share_results === 1) await this.shareResult(r.params_hash, hit);
    return { ok: true, value: { id: r.id, primary: main } };
  }

  async failLease(leaseId: string, f: FailRequest): Promise<Result<{ id: string; status: string }>> {
    this.hop();
    const h = this.held(leaseId);
    if (!h.ok) return h;
    const status = this.requeueOrFail(h.value, f.reason, f.retryable, f.code);
    if (status === 'failed') await this.terminal(h.value.id);
    return { ok: true, value: { id: h.value.id, status } };
  }

  // ------------------------------------------------------------------ alarms: lease expiry, webhook outbox, retention

  override async alarm(): Promise<void> {
    const now = Date.now();
    for (const r of expiredLeases(this.sql, now)) {
      const reason = `lease expired: group ${r.lease_group} sent no heartbeat for ${this.leaseTtl} ms (attempt ${r.attempts})`;
      if (this.requeueOrFail(r, reason, true, 'lease_expired') === 'failed') this.queueWebhook(r.id);
    }
    await this.retain(now);
    await deliverDue(this.sql, now, {
      maxAttempts: intVar(this.env.WEBHOOK_MAX_ATTEMPTS, 6),
      backoffMs: intVar(this.env.WEBHOOK_BACKOFF_MS, 2000),
      egress: egressPolicy(this.env),
    });
    await this.scheduleAlarm();
  }

  /**
   * Retention as of `now`: rows past expires_at go, and with them the R2 objects nothing else references; spent
   * nonces and old settled webhook rows are pruned. The alarm runs it; tests run it at simulated times. CDN copies
   * need no purge: their URL is signed with the same expiry, and no cache lifetime goes past it.
   */
  async retain(now: number): Promise<{ jobs: number; objects: number; nonces: number; webhooks: number }> {
    const swept = sweepExpired(this.sql, now);
    for (const j of swept.jobs) this.sse.end(j.id);
    let objects = 0;
    const content = new Map(swept.jobs.flatMap((j) => j.content).map((c) => [c.key, c]));
    for (const c of content.values()) if (await this.releaseContent(c)) objects++;
    return { jobs: swept.jobs.length, objects, nonces: swept.nonces, webhooks: swept.webhooks };
  }

  private async scheduleAlarm(): Promise<void> {
    const next = nextWakeup(this.sql);
    if (next === null) await this.ctx.storage.deleteAlarm();
    else await this.ctx.storage.setAlarm(Math.max(next, Date.now() + 10));
  }

  private async ensureAlarm(at: number): Promise<void> {
    const cur = await this.ctx.storage.getAlarm();
    if (cur === null || at < cur) await this.ctx.storage.setAlarm(at);
  }

  // ------------------------------------------------------------------ state transitions

  private row(id: string): JobRow {
    return this.sql.exec<JobRow>('SELECT * FROM jobs WHERE id = ?', id).one();
  }

  private requeueOrFail(r: JobRow, reason: string, retryable: boolean, code?: string): 'queued' | 'failed' {
    const now = Date.now();
    const status = requeueOrFail(this.sql, r, reason, retryable, this.maxAttempts, now, now + this.ttlMs(r.key_id, r.model), code);
    this.publish(r.id);
    if (status === 'queued') this.wake(r.model);
    return status;
  }

  /** The lease id stays, so the running driver's next heartbeat is answered `cancel: true`. */
  private cancelRow(r: JobRow): void {
    const now = Date.now();
    this.sql.exec("UPDATE jobs SET status = 'cancelled', lease_expires = NULL, completed_at = ?, expires_at = ? WHERE id = ?",
      now, now + this.ttlMs(r.key_id, r.model), r.id);
    this.publish(r.id);
  }

  private async terminal(id: string): Promise<void> {
    this.publish(id);
    this.finished.wake(id);
    if (this.queueWebhook(id)) await this.ensureAlarm(Date.now());
    else await this.scheduleAlarm();
  }

  /** Queues the job's webhook of `type` (default: its terminal event) when it has a URL and subscribed to the type. */
  private queueWebhook(id: string, type?: WebhookEventType): boolean {
    const r = this.row(id);
    const t = type ?? (r.status === 'completed' ? 'video.completed' : 'video.failed');
    if (!r.webhook_url || !subscribed(r, t)) return false;
    enqueueWebhook(this.sql, r.key_id, r.webhook_url, t, toVideo(r), Date.now());
    return true;
  }

  private publish(id: string): void {
    if (!this.sse.has(id)) return;
    this.sse.publish(toVideo(this.row(id)));
  }

  private wake(model: string): void {
    this.waiters.wake(model);
  }

  // ------------------------------------------------------------------ content shared between shards

  /** Drops the R2 object (and its index entries everywhere) once no job of any shard references the content. */
  private async releaseContent(c: ContentRef): Promise<boolean> {
    if (this.references(c.sha256, false)) return false;
    const peers = Array.from({ length: this.shards }, (_, i) => i).filter((i) => i !== this.shard);
    for (const i of peers) if (await this.peer(i).references(c.sha256)) return false;
    this.forget(c.sha256, false);
    await this.env.RESULTS.delete(c.key);
    for (const i of peers) await this.peer(i).forget(c.sha256);
    return true;
  }

  /** Whether a job of this shard references the content (as any of its artifacts). */
  references(sha256: string, rpc = true): boolean {
    if (rpc) this.hop();
    return referenced(this.sql, sha256);
  }

  /** Drops this shard's result-index entries that name freed content, so no request is answered from it again. */
  forget(sha256: string, rpc = true): void {
    if (rpc) this.hop();
    // a hash is 64 hex characters: found inside the artifacts JSON, it is that artifact's
    this.sql.exec('DELETE FROM result_index WHERE sha256 = ? OR instr(artifacts, ?) > 0', sha256, sha256);
  }

  /** The shared (opt-in) result index entry of these params, from the shard the params hash picks. */
  private async sharedHit(paramsHash: string): Promise<ResultHit | undefined> {
    const i = shardOfText(paramsHash, this.shards);
    const hit = i === this.shard ? this.sharedResult(paramsHash, false) : await this.peer(i).sharedResult(paramsHash);
    // content freed in another shard since: no reuse
    return hit && (await this.env.RESULTS.head(contentRef(primary(hit.artifacts)).key)) ? hit : undefined;
  }

  sharedResult(paramsHash: string, rpc = true): ResultHit | undefined {
    if (rpc) this.hop();
    return findResult(this.sql, SHARED_SCOPE, paramsHash);
  }

  private async shareResult(paramsHash: string, hit: ResultHit): Promise<void> {
    const i = shardOfText(paramsHash, this.shards);
    if (i === this.shard) this.recordShared(paramsHash, hit, false);
    else await this.peer(i).recordShared(paramsHash, hit);
  }

  recordShared(paramsHash: string, hit: ResultHit, rpc = true): void {
    if (rpc) this.hop();
    recordResult(this.sql, SHARED_SCOPE, paramsHash, hit, Date.now());
  }
}
