// Admin API for API keys (guarded by ADMIN_TOKEN): create and revoke.
import { z } from 'zod';

export const SCOPES = ['videos:read', 'videos:write'] as const;
export const Scope = z.enum(SCOPES);

export const CreateKeyRequest = z
  .strictObject({
    owner: z.string().min(1).max(128),
    scopes: z.array(Scope).min(1).default([...SCOPES]),
    rate_limit_per_min: z.number().int().min(1).max(1_000_000).default(600),
    max_active_jobs: z.number().int().min(1).max(100_000).default(100),
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
    created_at: z.number().int(),
    revoked_at: z.number().int().nullable(),
  })
  .meta({ id: 'ApiKeyInfo' });
export type ApiKeyInfo = z.infer<typeof ApiKeyInfo>;

/** Returned once, at creation: the only time the secret key and the webhook secret are shown. */
export const CreatedKey = ApiKeyInfo.extend({ key: z.string(), webhook_secret: z.string() }).meta({ id: 'CreatedKey' });
export type CreatedKey = z.infer<typeof CreatedKey>;
