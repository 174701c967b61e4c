// The official openai SDK, unchanged, pointed at the edge: create (multipart), retrieve, list, downloadContent,
// delete, and its error mapping of our problem+json.
import { SELF } from 'cloudflare:test';
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { BASE, lease, newKey, runOneJob, runOneJobWithVariants } from './helpers.ts';

describe('openai SDK compatibility', () => {
  it('runs the videos lifecycle through the SDK', async () => {
    const k = await newKey('sdk-user');
    const seen: string[] = [];
    const client = new OpenAI({
      apiKey: k.key,
      baseURL: `${BASE}/v1`,
      maxRetries: 0,
      fetch: (url, init) => {
        if (String(url).startsWith('data:')) return fetch(String(url), init as RequestInit); // SDK's FormData probe
        seen.push(`${init?.method ?? 'GET'} ${new URL(String(url)).pathname} ${init?.body instanceof FormData ? 'multipart/form-data' : ''}`);
        return SELF.fetch(String(url), init as RequestInit);
      },
    });
    while (await lease(0, 'drain')) {}
    const created = await client.videos.create({ prompt: 'a red ball bouncing', seconds: '4', size: '64x64' as '720x1280', model: 'uvit-t2v-demo' });
    expect(seen[0]).toBe('POST /v1/videos multipart/form-data');
    expect(created).toMatchObject({ object: 'video', status: 'queued', seconds: '4', size: '64x64', model: 'uvit-t2v-demo', progress: 0 });

    const { bytes } = await runOneJob();
    const got = await client.videos.retrieve(created.id);
    expect(got).toMatchObject({ id: created.id, status: 'completed', progress: 100 });
    expect(got.completed_at).toBeTypeOf('number');

    await client.videos.create({ prompt: 'second', size: '64x64' as '720x1280' });
    const ids: string[] = [];
    for await (const v of client.videos.list({ limit: 1 })) ids.push(v.id); // auto-paginates with `after`
    expect(ids.length).toBe(2);
    expect(ids[1]).toBe(created.id);

    const content = await client.videos.downloadContent(created.id);
    expect(new Uint8Array(await content.arrayBuffer())).toEqual(bytes);
    await expect(client.videos.downloadContent(created.id, { variant: 'thumbnail' })).rejects.toBeInstanceOf(OpenAI.NotFoundError); // a PUT …/result job has none

    const del = await client.videos.delete(created.id);
    expect(del).toEqual({ id: created.id, object: 'video.deleted', deleted: true });

    const err = await client.videos.retrieve(created.id).catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect(err.message).toMatch(/No video with id/);
    const bad = await client.videos.create({ prompt: 'x', seconds: '99' as '4' }).catch((e) => e);
    expect(bad.status).toBe(422);
    expect(bad.message).toMatch(/seconds must be > 0 and ≤ 16/);
    // the content variants, from a backend that uploads them: video, thumbnail, spritesheet
    while (await lease(0, 'drain')) {} // 'second' above stays queued otherwise, and would be the job leased next
    const withVariants = await client.videos.create({ prompt: 'variants', size: '64x64' as '720x1280', model: 'uvit-t2v-demo' });
    const { files } = await runOneJobWithVariants();
    for (const [variant, type] of [['video', 'video/mp4'], ['thumbnail', 'image/webp'], ['spritesheet', 'image/jpeg']] as const) {
      const r = await client.videos.downloadContent(withVariants.id, { variant });
      expect(r.headers.get('content-type')).toBe(type);
      expect(new Uint8Array(await r.arrayBuffer())).toEqual(files[variant]);
    }
    expect(seen.at(-1)).toBe(`GET /v1/videos/${withVariants.id}/content `);
    const anon = new OpenAI({ apiKey: 'wrong', baseURL: `${BASE}/v1`, maxRetries: 0, fetch: (u, i) => SELF.fetch(String(u), i as RequestInit) });
    expect(await anon.videos.list().catch((e) => e)).toBeInstanceOf(OpenAI.AuthenticationError);
  });
});
