import { describe, expect, it } from 'vitest';
import { api, call, createVideo, newKey, runOneJob } from './helpers.ts';

describe('smoke', () => {
  it('creates, leases, completes, downloads', async () => {
    expect((await call('/healthz')).status).toBe(200);
    const k = await newKey();
    const v = await createVideo(k.key, { prompt: 'a red ball', seconds: 4, size: '64x64', seed: 1 });
    expect(v.status).toBe('queued');
    const { bytes } = await runOneJob();
    const got = await (await api(k.key, `/v1/videos/${v.id}`)).json<any>();
    expect(got.status).toBe('completed');
    const content = await api(k.key, `/v1/videos/${v.id}/content`);
    expect(new Uint8Array(await content.arrayBuffer())).toEqual(bytes);
  });
});
