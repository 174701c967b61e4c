// Shared Hono typing for the edge routes.
import type { PresentedKey } from '../auth/apiKey.ts';
import type { Env } from '../env.ts';

export type AppEnv = { Bindings: Env; Variables: { key: PresentedKey; requestId: string } };

export function origin(url: string): string {
  return new URL(url).origin;
}
