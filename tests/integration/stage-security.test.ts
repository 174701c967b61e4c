// The stage transport under attack, against REAL stage processes over TCP (spawnStages, golden model, 2 stages): what
// a local process could do to an open stage port — read its stats and segment names, send one huge batch, cancel
// another job, register as the driver to receive its results, leave memory held — each tried here and refused.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HEADER_BYTES, encodeFrame, frameText } from '../../shared/frame.ts';
import { jobIdOf } from '../../shared/jobId.ts';
import type { Tensor } from '../../shared/tensor.ts';
import { PipelineClient } from '../../gpu-backend/pipeline/client/pipelineClient.ts';
import { spawnStages, type StageGroup } from '../../gpu-backend/pipeline/client/spawn.ts';
import { writePlan } from '../../gpu-backend/pipeline/setup.ts';
import { GroupSecret } from '../../gpu-backend/pipeline/wire/auth.ts';
import type { StageStats } from '../../gpu-backend/pipeline/wire/protocol.ts';
import { GOLDEN, goldenConfig, goldenInputs } from './pipeline-helpers.ts';
import { RawStageClient, controlMeta } from './stage-raw.ts';

let dir: string;
let g: StageGroup;
let victim: PipelineClient;
let ref: Tensor<'float32'>;
const inp = goldenInputs();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'stage-security-'));
  const plan = writePlan(dir, goldenConfig(), join(GOLDEN, 'weights.safetensors'), 'sequential');
  g = await spawnStages(plan, { threads: 1, stageArgs: ['--stall-timeout-s', '1', '--max-held-mb', '4'] });
  victim = await PipelineClient.connect(g.plan, g.addresses, { secret: g.secret, timeoutMs: 20_000 });
  ref = await victim.forward('reference', 0, 0, inp);
});
afterAll(async () => {
  victim?.close();
  await g?.close();
  rmSync(dir, { recursive: true, force: true });
});

const driver = (k: number, id: number) => RawStageClient.open(g.addresses[k], { secret: g.secret, role: 'driver', stage: k, id });

/** a stage's counters, asked over an authenticated driver connection of its own */
async function stats(k: number): Promise<StageStats> {
  const c = await driver(k, 7000 + k);
  c.sendText(controlMeta('stats', 7000 + k), '');
  const s = JSON.parse(frameText(await c.next((f) => f.header.kind === 'stats'))) as StageStats;
  c.destroy();
  return s;
}

function rssBytes(pid: number): number {
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
}

/** the header of an x frame of `batch` items (CRC left wrong: a refused frame is never read that far) */
function xHeader(job: string, origin: number, batch: number): { header: Uint8Array; payloadBytes: number } {
  const perItem = inp.x.dims.slice(1).reduce((a, b) => a * b, 1);
  const one = encodeFrame({ ...controlMeta('data', origin, job), segment: 0, role: 'input', roleIndex: 0 }, { dtype: 'float32', dims: [1, ...inp.x.dims.slice(1)], data: new Float32Array(perItem) });
  const header = one.header.slice();
  const v = new DataView(header.buffer);
  v.setUint32(44, batch, true);
  const payloadBytes = batch * perItem * 4;
  v.setUint32(76, payloadBytes, true);
  return { header, payloadBytes };
}

/** write `n` zero bytes in 1 MiB pieces, honouring backpressure */
async function stream(c: RawStageClient, n: number): Promise<void> {
  const piece = new Uint8Array(2 ** 20);
  for (let left = n; left > 0 && !c.closedByStage; left -= piece.length) {
    if (!c.socket.write(left >= piece.length ? piece : piece.subarray(0, left))) {
      await new Promise<void>((r) => {
        c.socket.once('drain', r);
        void c.closed.then(r);
      });
    }
  }
}

const same = (a: Tensor, b: Tensor) => Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength).equals(Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength));

describe('stage transport: authentication', () => {
  it('an unauthenticated hello and stats request are refused and learn nothing; a wrong secret or stage index is refused', async () => {
    const before = (await stats(0)).refusedConnections;
    const c = await RawStageClient.open(g.addresses[0]);
    // Read the challenge before sending: the stage refuses by closing at once, and a close with our frames unread
    // is a TCP reset, which can discard what our kernel holds for us unread (under load the challenge was lost so).
    await c.next((f) => f.header.kind === 'auth');
    c.sendText(controlMeta('hello', 99), JSON.stringify({ role: 'driver', peers: g.addresses }));
    c.sendText(controlMeta('stats', 99), '');
    expect(await c.closesWithin(3000)).toBe(true);
    // all it got is the challenge: one auth frame holding a random nonce, no stage index, no segment names
    expect(c.frames.map((f) => f.header.kind)).toEqual(['auth']);
    expect(c.received).toBe(HEADER_BYTES + 33);
    for (const auth of [
      { secret: GroupSecret.generate(), role: 'driver' as const, stage: 0, id: 5 },
      { secret: g.secret, role: 'driver' as const, stage: 1, id: 5 }, // meant for stage 1, sent to stage 0
    ]) {
      await expect(RawStageClient.open(g.addresses[0], auth)).rejects.toThrow(/closed the connection/);
    }
    expect((await stats(0)).refusedConnections).toBe(before + 3);
    // the group itself is unaffected
    expect(same(await victim.forward('after-strangers', 0, 0, inp), ref)).toBe(true);
  });

  it('a connection that never completes the handshake, or stops halfway through a frame, is dropped', async () => {
    const idle = await RawStageClient.open(g.addresses[1]);
    const slow = await driver(1, 31);
    slow.write(new Uint8Array(HEADER_BYTES - 10)); // part of a header, then nothing
    expect(await slow.closesWithin(4000)).toBe(true); // --stall-timeout-s 1 (swept every second)
    expect(await idle.closesWithin(8000)).toBe(true); // handshake within 5 s
  });
});

describe('stage transport: bounds checked before allocation', () => {
  it('an oversized batch is refused by its header: the payload is skipped unread, RSS stays flat, the link stays usable', async () => {
    const job = jobIdOf('oversized-batch');
    const c = await driver(0, 41);
    c.sendText(controlMeta('job', 41, job), '');
    await c.next((f) => f.header.kind === 'job');
    const pid = g.pids[0];
    const rss0 = rssBytes(pid);
    const { header, payloadBytes } = xHeader(job, 41, 2 ** 16); // 256 MiB of x, under the 1 GiB frame limit
    expect(payloadBytes).toBeGreaterThanOrEqual(256 * 2 ** 20);
    c.write(header);
    const err = await c.next((f) => f.header.kind === 'error');
    expect(err.header.jobId).toBe(job);
    expect(frameText(err)).toMatch(/refused the input tensor .*: x of dims \[65536,.*exceeds \[4,.*batch at most 4/);
    await stream(c, payloadBytes);
    // the same connection is still in step after the skipped payload: it answers a stats request
    c.sendText(controlMeta('stats', 41), '');
    const s = JSON.parse(frameText(await c.next((f) => f.header.kind === 'stats'))) as StageStats;
    const grew = rssBytes(pid) - rss0;
    // allocating the batch would add >= 256 MiB; read buffers not yet collected account for up to ~32 MiB (measured
    // 33.7 MB once in a clean-clone run), so a quarter of the payload separates the two cases with room
    expect(grew, `stage 0 RSS grew ${grew} B while a 256 MiB batch was sent`).toBeLessThan(64 * 2 ** 20);
    expect(s.refusedFrames).toBeGreaterThan(0);
    expect(s.heldBytes).toBe(0);
    c.destroy();
    // a stranger's oversized frame is cut off at its header
    const rss1 = rssBytes(pid);
    const x = await RawStageClient.open(g.addresses[0]);
    x.write(xHeader(job, 41, 2 ** 16).header);
    await stream(x, 64 * 2 ** 20);
    expect(await x.closesWithin(3000)).toBe(true);
    // keeping what the stranger streamed would add 64 MiB, allocating its batch 256 MiB
    expect(rssBytes(pid) - rss1).toBeLessThan(32 * 2 ** 20);
    expect(same(await victim.forward('after-oversized', 0, 0, inp), ref)).toBe(true);
  });

  it('a disconnect frees everything held for the driver; tensors beyond the stage memory bound are refused', async () => {
    /** a driver connection with a job open on stage 0 that sends x (never timesteps: no unit runs) for n micro-batches */
    const holdX = async (origin: number, name: string, n: number) => {
      const job = jobIdOf(name);
      const c = await driver(0, origin);
      c.sendText(controlMeta('job', origin, job), '');
      await c.next((f) => f.header.kind === 'job');
      for (let mb = 0; mb < n; mb++) {
        const f = encodeFrame({ ...controlMeta('data', origin, job), microBatch: mb, segment: 0, role: 'input', roleIndex: 0 }, inp.x);
        c.write(f.header);
        c.write(f.payload);
      }
      return c;
    };
    const c = await holdX(51, 'held-then-gone', 20);
    await new Promise((r) => setTimeout(r, 300));
    expect((await stats(0)).heldBytes).toBe(20 * inp.x.data.byteLength);
    c.destroy();
    await new Promise((r) => setTimeout(r, 300));
    expect((await stats(0)).heldBytes).toBe(0);
    // --max-held-mb 4: the frame that would pass it is refused by its header, and its job fails
    const n = Math.ceil((5 * 2 ** 20) / inp.x.data.byteLength);
    const big = await holdX(52, 'over-the-bound', n);
    const err = await big.next((f) => f.header.kind === 'error');
    expect(frameText(err)).toMatch(/refused the input tensor .*: the stage holds \d+ B of tensors; \d+ B more would exceed its limit of 4194304 B/);
    await new Promise((r) => setTimeout(r, 300));
    expect((await stats(0)).heldBytes).toBe(0); // the failed job's tensors went with it
    big.destroy();
  });
});

describe('stage transport: roles', () => {
  it('a foreign cancel (a stranger, a peer stage, another driver) is refused; the job completes exactly', async () => {
    const job = 'lease_victim_cancel';
    const id = jobIdOf(job); // what a lease id read from a log gives an attacker
    const stranger = await RawStageClient.open(g.addresses[1]);
    const peer = await RawStageClient.open(g.addresses[1], { secret: g.secret, role: 'peer', stage: 1, id: 0 });
    const other = await driver(1, 61);
    const forwards = Promise.all(Array.from({ length: 6 }, (_, k) => victim.forward(job, k, 0, inp)));
    for (let i = 0; i < 3; i++) {
      for (const c of [stranger, peer, other]) if (!c.closedByStage) c.sendText(controlMeta('cancel', c === other ? 61 : victim.origin, id), '');
      await new Promise((r) => setTimeout(r, 20));
    }
    const outs = await forwards;
    for (const o of outs) expect(same(o, ref)).toBe(true);
    expect(await stranger.closesWithin(2000)).toBe(true);
    expect(await peer.closesWithin(2000)).toBe(true);
    expect(other.frames.filter((f) => f.header.kind === 'data')).toEqual([]);
    other.destroy();
  });

  it('a second driver cannot take over the group\'s origin or a job, and never receives another job\'s tensors', async () => {
    const job = 'lease_victim_hijack';
    const id = jobIdOf(job);
    // a stranger registering as the driver, as the old protocol allowed
    const stranger = await RawStageClient.open(g.addresses[1]);
    stranger.sendText(controlMeta('hello', victim.origin), JSON.stringify({ role: 'driver' }));
    // a holder of the secret claiming the victim's origin: refused at the handshake
    await expect(driver(1, victim.origin)).rejects.toThrow(/closed the connection/);
    // ... or under its own origin: it cannot open or feed the victim's job (stage 0 takes the model inputs)
    const rival = await driver(0, 71);
    expect(same(await victim.forward(job, 0, 0, inp), ref)).toBe(true); // the victim's job is open from here on
    const forwards = Promise.all(Array.from({ length: 4 }, (_, k) => victim.forward(job, k + 1, 0, inp)));
    rival.sendText(controlMeta('job', 71, id), '');
    const refused = await rival.next((f) => f.header.kind === 'error');
    expect(frameText(refused)).toMatch(/cannot open job [0-9a-f]{32}: another driver opened it/);
    rival.send({ ...controlMeta('data', 71, id), segment: 0, role: 'input', roleIndex: 0 }, inp.x);
    const notOpen = await rival.next((f) => f.header.kind === 'error' && f !== refused);
    expect(frameText(notOpen)).toMatch(/job [0-9a-f]{32} is not open on this connection/);
    const outs = await forwards;
    for (const o of outs) expect(same(o, ref)).toBe(true);
    await new Promise((r) => setTimeout(r, 200));
    expect(rival.frames.filter((f) => f.header.kind === 'data')).toEqual([]);
    expect(stranger.frames.filter((f) => f.header.kind === 'data')).toEqual([]);
    expect(stranger.closedByStage).toBe(true);
    rival.destroy();
  });
});
