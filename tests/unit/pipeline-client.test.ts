// The driver's pipeline client against a misbehaving stage (a fake stage on real TCP): garbage control frames fail
// the stage's jobs with a clear error instead of crashing the driver process.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { NO_JOB, NO_SEGMENT, type FrameMeta } from '../../shared/frame.ts';
import { parseConfig } from '../../gpu-backend/model/config.ts';
import { planSequential } from '../../gpu-backend/partition/index.ts';
import { PipelineClient } from '../../gpu-backend/pipeline/client/pipelineClient.ts';
import { FrameSocket } from '../../gpu-backend/pipeline/wire/transport.ts';
import { AUTH_META, GroupSecret, authTensor, checkProof, encodeChallenge } from '../../gpu-backend/pipeline/wire/auth.ts';
import type { StageHello } from '../../gpu-backend/pipeline/wire/protocol.ts';

const cfg = parseConfig({ img_size: 8, patch_size: 2, in_chans: 4, embed_dim: 32, depth: 3, num_heads: 2, num_classes: 10 });
const plan = planSequential(cfg, 1);
const meta = (kind: FrameMeta['kind']): FrameMeta => ({
  kind, jobId: NO_JOB, origin: 0, step: 0, microBatch: 0, segment: NO_SEGMENT, role: 'none', roleIndex: 0,
});

let server: net.Server | undefined;
afterEach(() => server?.close());

const secret = GroupSecret.generate();

/**
 * a stage that completes the handshake and answers the hello and job opening properly, then replies to the first
 * data frame with a stats frame that is not JSON
 */
async function garbageStatsStage(): Promise<string> {
  server = net.createServer((socket) => {
    const challenge = encodeChallenge();
    const conn = new FrameSocket(socket, {
      name: 'fake stage',
      onFrame: (f) => {
        if (f.header.kind === 'auth') {
          void conn.send(AUTH_META, authTensor(checkProof(secret, challenge.nonce, 0, f.tensor.data as Uint8Array).accept));
        } else if (f.header.kind === 'job') {
          void conn.sendText({ ...meta('job'), jobId: f.header.jobId, origin: f.header.origin }, '');
        } else if (f.header.kind === 'hello') {
          const hello: StageHello = { role: 'stage', stage: 0, partition: 'sequential', segments: { '0': ['x', 'timesteps', 'y'] } };
          void conn.sendText(meta('hello'), JSON.stringify(hello));
        } else if (f.header.kind === 'data') {
          void conn.sendText(meta('stats'), '{not json');
        }
      },
    });
    void conn.send(AUTH_META, authTensor(challenge.bytes));
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return `127.0.0.1:${(server!.address() as net.AddressInfo).port}`;
}

describe('pipeline client vs a misbehaving stage', () => {
  it('a stats frame that is not JSON fails the in-flight forward as a lost stage; the driver keeps running', async () => {
    const c = await PipelineClient.connect(plan, [await garbageStatsStage()], { secret, timeoutMs: 10_000 });
    try {
      const inputs = {
        x: { dtype: 'float32' as const, dims: [1, 4, 8, 8], data: new Float32Array(256) },
        timesteps: { dtype: 'float32' as const, dims: [1], data: new Float32Array([10]) },
        y: { dtype: 'int64' as const, dims: [1], data: new BigInt64Array([1n]) },
      };
      await expect(c.forward('job-1', 0, 0, inputs)).rejects.toThrow(/lost stage 0 .*stats frame that is not JSON/);
    } finally {
      c.close();
    }
  });
});
