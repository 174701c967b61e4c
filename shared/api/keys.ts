// Admin API for API keys (guarded by ADMIN_TOKEN): create and revoke.
import * as z from 'zod';

export const SCOPES = ['videos:read', 'videos:write'] as const;
export const Scope = z.enum(SCOPES);

export const CreateKeyRequest = z
  .strictObject({
    owner: z.string().min(1).max(128),
    scopes: z.array(Scope).min(1).default([...SCOPES]),
    rate_limit_per_min: z.number().int().min(1).max(1_000_000).default(600),
    max_active_jobs: z.number().int().min(1).max(100_000).default(100),
    share_results: z
      .boolean()
      .default(false)
      .describe("answer this key's seeded requests from other sharing keys' results, and share its own; otherwise reuse stays within the owner"),
    result_ttl_seconds: z
      .number().int().min(1).max(10 * 365 * 86_400).nullable().default(null)
      .describe("how long this key's finished videos are kept (expires_at); null = the model's or the edge's default"),
  })
  .meta({ id: 'CreateKeyRequest' });
export type CreateKeyRequest = z.infer<typeof CreateKeyRequest>;

export const ApiKeyInfo = z
  .object({
    id: z.string(),
    owner: z.string(),
    scopes: z.array(Scope),
    rate_limit_per_min: z.number().int(),
    max_active_jobs: z.number().int(),
    share_results: z.boolean(),
    result_ttl_seconds: z.number().int().nullable(),
    created_at: z.number().int(),
    revoked_at: z.number().int().nullable(),
  })
  .meta({ id: 'ApiKeyInfo' });
export type ApiKeyInfo = z.infer<typeof ApiKeyInfo>;

/** Returned once, at creation: the only time the secret key and the webhook secret are shown. */
export const CreatedKey = ApiKeyInfo.extend({ key: z.string(), webhook_secret: z.string() }).meta({ id: 'CreatedKey' });
export type CreatedKey = z.infer<typeof CreatedKey>;
