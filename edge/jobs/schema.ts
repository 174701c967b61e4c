// SQLite schema of the JobStore Durable Object (idempotent DDL, run in the constructor).
// Columns added after a table first shipped: ALTERed into stores created before them (CREATE IF NOT EXISTS keeps
// an old table as it was).
const ADDED_COLUMNS: [table: string, column: string, decl: string][] = [
  ['keys', 'share_results', 'INTEGER NOT NULL DEFAULT 0'],
  ['keys', 'result_ttl_s', 'INTEGER'],
  ['jobs', 'expires_at', 'INTEGER'],
  ['jobs', 'webhook_events', 'TEXT'],
  ['jobs', 'hook_progress_at', 'INTEGER'],
  ['result_index', 'artifacts', 'TEXT'],
  ['jobs', 'variant_cdn', 'TEXT'],
];

export function migrate(sql: SqlStorage): void {
  for (const [table, column, decl] of ADDED_COLUMNS) {
    const cols = sql.exec<{ name: string }>(`PRAGMA table_info(${table})`).toArray();
    if (cols.length > 0 && !cols.some((c) => c.name === column)) sql.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${decl}`);
  }
  const hadArtifacts = sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'job_artifacts'").toArray().length > 0;
  sql.exec(DDL);
  // results stored before artifacts existed: their MP4 becomes the job's `video` artifact (what references count)
  if (!hadArtifacts)
    sql.exec(`INSERT INTO job_artifacts (job_id, name, sha256, bytes, content_type)
      SELECT id, 'video', content_sha256, bytes, 'video/mp4' FROM jobs WHERE content_sha256 IS NOT NULL`);
}

const DDL = `
CREATE TABLE IF NOT EXISTS keys (
  id TEXT PRIMARY KEY, hash TEXT NOT NULL, owner TEXT NOT NULL, scopes TEXT NOT NULL,
  rate_per_min INTEGER NOT NULL, max_active INTEGER NOT NULL, webhook_secret TEXT NOT NULL,
  created_at INTEGER NOT NULL, revoked_at INTEGER, share_results INTEGER NOT NULL DEFAULT 0, result_ttl_s INTEGER
);
CREATE TABLE IF NOT EXISTS jobs (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE, key_id TEXT NOT NULL, status TEXT NOT NULL, progress REAL NOT NULL DEFAULT 0,
  model TEXT NOT NULL, spec TEXT NOT NULL, params_hash TEXT NOT NULL, webhook_url TEXT,
  created_at INTEGER NOT NULL, completed_at INTEGER, error_code TEXT, error_message TEXT,
  attempts INTEGER NOT NULL DEFAULT 0, lease_id TEXT, lease_group TEXT, lease_expires INTEGER,
  content_sha256 TEXT, bytes INTEGER, cdn_path TEXT, cached INTEGER NOT NULL DEFAULT 0,
  idem_key TEXT, idem_hash TEXT, expires_at INTEGER, webhook_events TEXT, hook_progress_at INTEGER, variant_cdn TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_key ON jobs(key_id, seq);
CREATE INDEX IF NOT EXISTS jobs_queue ON jobs(model, status, seq);
CREATE INDEX IF NOT EXISTS jobs_lease ON jobs(lease_id);
CREATE INDEX IF NOT EXISTS jobs_expiry ON jobs(status, lease_expires);
CREATE INDEX IF NOT EXISTS jobs_sha ON jobs(content_sha256);
CREATE INDEX IF NOT EXISTS jobs_retention ON jobs(expires_at) WHERE expires_at IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS jobs_idem ON jobs(key_id, idem_key) WHERE idem_key IS NOT NULL;
DROP TABLE IF EXISTS results;
CREATE TABLE IF NOT EXISTS result_index (
  scope TEXT NOT NULL, params_hash TEXT NOT NULL, sha256 TEXT NOT NULL, bytes INTEGER NOT NULL, created_at INTEGER NOT NULL,
  artifacts TEXT, PRIMARY KEY (scope, params_hash)
);
CREATE TABLE IF NOT EXISTS job_artifacts (
  job_id TEXT NOT NULL, name TEXT NOT NULL, sha256 TEXT NOT NULL, bytes INTEGER NOT NULL, content_type TEXT NOT NULL,
  PRIMARY KEY (job_id, name)
);
CREATE INDEX IF NOT EXISTS job_artifacts_sha ON job_artifacts(sha256);
CREATE TABLE IF NOT EXISTS lease_artifacts (
  lease_id TEXT NOT NULL, name TEXT NOT NULL, sha256 TEXT NOT NULL, bytes INTEGER NOT NULL, content_type TEXT NOT NULL,
  PRIMARY KEY (lease_id, name)
);
CREATE INDEX IF NOT EXISTS lease_artifacts_sha ON lease_artifacts(sha256);
CREATE TABLE IF NOT EXISTS uploads (
  upload_id TEXT PRIMARY KEY, lease_id TEXT NOT NULL, name TEXT NOT NULL, sha256 TEXT NOT NULL, bytes INTEGER NOT NULL,
  content_type TEXT NOT NULL, r2_upload_id TEXT NOT NULL, part_bytes INTEGER NOT NULL,
  parts INTEGER NOT NULL, next_part INTEGER NOT NULL, stored TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS result_index_sha ON result_index(sha256);
CREATE TABLE IF NOT EXISTS nonces (nonce TEXT PRIMARY KEY, expires INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS webhooks (
  id TEXT PRIMARY KEY, job_id TEXT NOT NULL, key_id TEXT NOT NULL, url TEXT NOT NULL, body TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL, status TEXT NOT NULL, last_error TEXT
);
CREATE INDEX IF NOT EXISTS webhooks_due ON webhooks(status, next_at);
CREATE TABLE IF NOT EXISTS groups (
  group_id TEXT PRIMARY KEY, model TEXT NOT NULL, capacity INTEGER NOT NULL, stages INTEGER, last_seen INTEGER NOT NULL
);
`;

export type JobRow = {
  seq: number;
  id: string;
  key_id: string;
  status: string;
  progress: number;
  model: string;
  spec: string;
  params_hash: string;
  webhook_url: string | null;
  created_at: number;
  completed_at: number | null;
  error_code: string | null;
  error_message: string | null;
  attempts: number;
  lease_id: string | null;
  lease_group: string | null;
  lease_expires: number | null;
  content_sha256: string | null;
  bytes: number | null;
  cdn_path: string | null;
  cached: number;
  idem_key: string | null;
  idem_hash: string | null;
  expires_at: number | null; // unix ms; set at a terminal state, the row (and its content) is dropped then
  webhook_events: string | null; // JSON array of subscribed event types; null = the default ones
  hook_progress_at: number | null; // when the last video.progress event was queued
  variant_cdn: string | null; // JSON {name: CDN path} of the completed result's other artifacts; null without CDN_SECRET
};

export type KeyRow = {
  id: string;
  hash: string;
  owner: string;
  scopes: string;
  rate_per_min: number;
  max_active: number;
  webhook_secret: string;
  created_at: number;
  revoked_at: number | null;
  share_results: number;
  result_ttl_s: number | null;
};
