// /openapi.json as served by the worker: 3.1, every public route documented, every $ref resolvable.
// (Schema-level validity against the OpenAPI 3.1 meta-schema: openapi.node.test.ts, since ajv needs eval.)
import { describe, expect, it } from 'vitest';
import { call } from './helpers.ts';

function refs(x: unknown, out: string[] = []): string[] {
  if (Array.isArray(x)) x.forEach((y) => refs(y, out));
  else if (x && typeof x === 'object') for (const [k, v] of Object.entries(x)) k === '$ref' ? out.push(v as string) : refs(v, out);
  return out;
}

describe('OpenAPI document', () => {
  it('is served, complete and self-consistent', async () => {
    const res = await call('/openapi.json');
    expect(res.status).toBe(200);
    const doc = await res.json<any>();
    expect(doc.openapi).toBe('3.1.0');
    for (const [p, m] of [
      ['/v1/videos', 'post'], ['/v1/videos', 'get'], ['/v1/videos/{id}', 'get'], ['/v1/videos/{id}', 'delete'],
      ['/v1/videos/{id}/cancel', 'post'], ['/v1/videos/{id}/content', 'get'], ['/v1/videos/{id}/events', 'get'],
      ['/cdn/{token}/{expires}/{file}', 'get'], ['/v1/models', 'get'], ['/healthz', 'get'], ['/internal/v1/lease', 'post'],
      ['/internal/v1/leases/{lease}/result', 'put'],
    ])
      expect(doc.paths[p]?.[m], `${m} ${p}`).toBeDefined();
    for (const r of refs(doc)) {
      const target = r.replace(/^#\//, '').split('/').reduce((o: any, k) => o?.[k], doc);
      expect(target, r).toBeDefined();
    }
    const create = doc.components.schemas.CreateVideoRequest;
    expect(create.required).toEqual(['prompt']);
    expect(Object.keys(create.properties)).toEqual(expect.arrayContaining(['prompt', 'model', 'seconds', 'size', 'seed', 'steps', 'guidance', 'fps', 'webhook_url']));
    expect(doc.components.schemas.Video.properties.status.enum).toEqual(['queued', 'in_progress', 'completed', 'failed', 'cancelled']);
    expect(doc.components.schemas.Video.properties.variant_cdn_urls).toMatchObject({ type: ['object', 'null'], additionalProperties: { type: 'string' } });
    expect(doc.paths['/v1/videos'].post.requestBody.content['multipart/form-data']).toBeDefined();
  });
});
