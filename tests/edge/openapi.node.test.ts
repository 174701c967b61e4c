// Validates the generated OpenAPI document against the official OpenAPI 3.1 JSON schema (Node: ajv needs eval).
import { Validator } from '@seriousme/openapi-schema-validator';
import { describe, expect, it } from 'vitest';
import { buildOpenApi } from '../../shared/api/openapi.ts';

describe('OpenAPI document validity', { timeout: 30_000 }, () => {
  it('passes the OpenAPI 3.1 schema', async () => {
    const v = new Validator();
    const res = await v.validate(buildOpenApi() as object);
    expect(res.errors ?? []).toEqual([]);
    expect(res.valid).toBe(true);
    expect(v.version).toBe('3.1');
  });

  it('catches an invalid document (the check can fail)', async () => {
    const doc = buildOpenApi() as { paths: Record<string, unknown> };
    doc.paths['/v1/videos'] = { post: { responses: 'nope' } };
    expect((await new Validator().validate(doc as object)).valid).toBe(false);
  });
});
