// Shared Hono typing for the edge routes.
import type { PresentedKey } from '../auth/apiKey.ts';
import type { Env } from '../env.ts';

export type AppEnv = { Bindings: Env; Variables: { key: PresentedKey; requestId: string } };

export function origin(url: string): string {
  return new URL(url).origin;
}

/**
 * Origin of the absolute URLs in responses (download_url, cdn_url): PUBLIC_BASE_URL from configuration, never the
 * request's Host header, which the client chooses. Unset: the URLs stay paths relative to the API.
 */
export function publicOrigin(env: Env): string {
  return env.PUBLIC_BASE_URL ? new URL(env.PUBLIC_BASE_URL).origin : '';
}
