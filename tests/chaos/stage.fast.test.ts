// The stage protocol under bad input: shared/frame.ts properties (any single bit flip of a frame is detected, random
// bytes only ever raise FrameError, any chunking reassembles), and a REAL `uvit stage` process (tiny model, the
// stack's own stage command line) fed torn, oversized, mis-typed and garbage frames over TCP, half of them by a
// stranger and half after a valid handshake: it must reject each without crashing and keep answering a well-behaved
// driver. Seeded (CHAOS_SEED; counts CHAOS_FRAME_N, CHAOS_STAGE_N).
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FrameError, HEADER_BYTES, NO_SEGMENT, decodeFrame, encodeFrameBytes, frameText, textFrame,
  type Frame, type FrameMeta,
} from '../../shared/frame.ts';
import { FrameDecoder } from '../../shared/frameDecoder.ts';
import type { Tensor } from '../../shared/tensor.ts';
import { GroupSecret, SECRET_ENV } from '../../gpu-backend/pipeline/wire/auth.ts';
import { RawStageClient, controlMeta } from '../integration/stage-raw.ts';
import { prepareModel } from '../../scripts/startModel.ts';
import { Proc, freePort } from '../../scripts/startProcs.ts';
import { ROOT } from '../../scripts/startStack.ts';
import { tinyGroupConfig } from './harness.ts';
import { Prng, chaosSeed, fuzzCount } from './prng.ts';
import { Tally } from './stats.ts';

const tally = new Tally('stage');
const seed = chaosSeed();

function meta(r: Prng, kind: FrameMeta['kind'] = 'data'): FrameMeta {
  return {
    kind, jobId: [...r.bytes(16)].map((b) => b.toString(16).padStart(2, '0')).join(''), origin: r.int(0, 2 ** 31),
    step: r.int(0, 1000), microBatch: r.int(0, 8), segment: r.pick([0, 1, 2, NO_SEGMENT]), role: r.pick(['none', 'stream', 'skip', 'eps', 'input']), roleIndex: r.int(0, 5),
  };
}

function tensor(r: Prng): Tensor {
  const dims = Array.from({ length: r.int(0, 4) }, () => r.int(0, 6));
  const n = dims.reduce((a, b) => a * b, 1);
  switch (r.int(0, 3)) {
    case 0: return { dtype: 'float32', dims, data: Float32Array.from({ length: n }, () => r.next() * 2 - 1) };
    case 1: return { dtype: 'float16', dims, data: Uint16Array.from({ length: n }, () => r.int(0, 0x7bff)) };
    case 2: return { dtype: 'int64', dims, data: BigInt64Array.from({ length: n }, () => BigInt(r.int(-1e6, 1e6))) };
    default: return { dtype: 'uint8', dims, data: r.bytes(n) };
  }
}

describe('shared/frame.ts properties (seeded)', () => {
  it('valid frames survive any chunking; every single bit flip is detected; random bytes raise only FrameError', () => {
    const r = new Prng(seed);
    const n = fuzzCount('FRAME', 300);
    for (let i = 0; i < n; i++) {
      const bytes = encodeFrameBytes(meta(r), tensor(r));
      // any chunking of a stream of frames reassembles to the same frames
      const dec = new FrameDecoder();
      const stream = new Uint8Array(bytes.length * 2);
      stream.set(bytes, 0);
      stream.set(bytes, bytes.length);
      const got: Frame[] = [];
      for (let off = 0; off < stream.length;) {
        const k = Math.min(stream.length - off, r.int(1, 97));
        got.push(...dec.push(stream.subarray(off, off + k)));
        off += k;
      }
      expect(got.length, `seed ${seed} case ${i}`).toBe(2);
      expect(decodeFrame(bytes).header.crc).toBe(got[1].header.crc);
      // one flipped bit anywhere: refused with a FrameError
      tally.add('bad_inputs_tried');
      const flipped = bytes.slice();
      const bit = r.int(0, flipped.length * 8 - 1);
      flipped[bit >> 3] ^= 1 << (bit & 7);
      expect(() => decodeFrame(flipped), `seed ${seed} case ${i}: bit ${bit} of ${flipped.length * 8} flipped`).toThrow(FrameError);
      tally.add('bad_inputs_handled');
      // random garbage: a FrameError or a wait for more bytes, never another exception
      tally.add('bad_inputs_tried');
      const g = new FrameDecoder({ maxPayloadBytes: 1 << 20 });
      try {
        g.push(r.bool(0.5) ? r.bytes(r.int(0, 400)) : Uint8Array.from([...bytes.subarray(0, HEADER_BYTES)].map((b) => (r.bool(0.1) ? r.int(0, 255) : b))));
      } catch (e) {
        expect(e, `seed ${seed} case ${i}: garbage raised ${(e as Error).name}`).toBeInstanceOf(FrameError);
      }
      tally.add('bad_inputs_handled');
    }
  });
});

// ------------------------------------------------------------------ a real stage process

let stage: Proc;
let port = 0;
const secret = GroupSecret.generate();

beforeAll(async () => {
  const cfg = tinyGroupConfig();
  const m = await prepareModel({ config: cfg, dir: join(tmpdir(), 'uvit-chaos-model', 'export'), stages: 2, log: () => {} });
  port = await freePort();
  stage = new Proc({
    name: 'stage0', command: process.execPath, cwd: ROOT, logFile: join(tmpdir(), `uvit-chaos-stage-${process.pid}.log`),
    env: { ...process.env, [SECRET_ENV]: secret.reveal() },
    args: [join(ROOT, 'bin/uvit.js'), 'stage', '--plan', m.planPath, '--index', '0', '--listen', `127.0.0.1:${port}`, '--threads', '1', '--max-payload-mb', '1'],
  });
  await stage.waitForLine(/^uvit-stage ready stage=0/, 120_000);
}, 240_000);

afterAll(async () => {
  tally.write();
  await stage?.stop(3000);
});

/** Opens a connection (as a driver with the group secret, or a stranger), sends `chunks`, and resolves when the stage closes it or after `ms`. */
async function sendRaw(chunks: Uint8Array[], ms = 400, halfClose = false, asDriver?: number): Promise<{ closedByStage: boolean; received: number }> {
  const c = await RawStageClient.open(`127.0.0.1:${port}`, asDriver === undefined ? undefined : { secret, role: 'driver', stage: 0, id: asDriver });
  for (const b of chunks) c.write(b);
  if (halfClose) c.socket.end();
  const closedByStage = await c.closesWithin(ms);
  c.destroy();
  return { closedByStage, received: c.received };
}

/** A driver's handshake, hello and a stats request: the stage must answer (it is alive and serving). */
async function healthy(): Promise<boolean> {
  try {
    const c = await RawStageClient.open(`127.0.0.1:${port}`, { secret, role: 'driver', stage: 0, id: 4242 });
    c.sendText(controlMeta('hello', 4242), JSON.stringify({ role: 'driver' }));
    c.sendText(controlMeta('stats', 4242), '');
    await c.next((f) => f.header.kind === 'hello', 5000);
    await c.next((f) => f.header.kind === 'stats', 5000);
    c.destroy();
    return true;
  } catch {
    return false;
  }
}

function bytesOf(f: { header: Uint8Array; payload: Uint8Array }): Uint8Array {
  const out = new Uint8Array(f.header.length + f.payload.length);
  out.set(f.header);
  out.set(f.payload, f.header.length);
  return out;
}

type Attack = { name: string; chunks: Uint8Array[]; halfClose?: boolean; origin: number };

function attack(r: Prng): Attack {
  const m = meta(r);
  return { ...pickAttack(r, m), origin: m.origin };
}

function pickAttack(r: Prng, m: FrameMeta): Omit<Attack, 'origin'> {
  const good = encodeFrameBytes({ ...m, kind: 'data', role: 'input', roleIndex: 0, segment: 0 }, { dtype: 'float32', dims: [1, 4], data: new Float32Array(4) });
  const set = (b: Uint8Array, off: number, f: (v: DataView) => void) => { const c = b.slice(); f(new DataView(c.buffer)); return c; };
  const hello = (text: string) => bytesOf(textFrame({ ...m, kind: 'hello' }, text));
  switch (r.int(0, 13)) {
    case 0: return { name: 'random bytes', chunks: [r.bytes(r.int(1, 2000))] };
    case 1: { const c = good.slice(); c[HEADER_BYTES + r.int(0, 15)] ^= 0x40; return { name: 'torn: payload bit flip (CRC mismatch)', chunks: [c] }; }
    case 2: return { name: 'torn: frame cut short then the connection closes', chunks: [good.subarray(0, r.int(1, good.length - 1))], halfClose: true };
    case 3: return { name: 'oversized: header claims 512 MiB (limit 1 MiB)', chunks: [set(good, 0, (v) => { v.setUint8(42, 1); v.setUint32(44, 128 * 2 ** 20, true); v.setUint32(76, 512 * 2 ** 20, true); })] };
    case 4: return { name: 'oversized: one dim above the maximum', chunks: [set(good, 0, (v) => v.setUint32(44, 0xffffffff, true))] };
    case 5: return { name: 'mis-typed: unknown dtype code', chunks: [set(good, 0, (v) => v.setUint8(41, r.int(5, 255)))] };
    case 6: return { name: 'mis-typed: unknown frame kind', chunks: [set(good, 0, (v) => v.setUint8(6, r.int(7, 255)))] };
    case 7: return { name: 'bad header: rank 9', chunks: [set(good, 0, (v) => v.setUint8(42, 9))] };
    case 8: return { name: 'bad magic / version', chunks: [set(good, 0, (v) => (r.bool() ? v.setUint32(0, r.int(0, 2 ** 31), true) : v.setUint16(4, r.int(2, 999), true)))] };
    case 9: { // well-formed frames whose tensors the stage cannot take: int64/uint8/float16 inputs, unknown slots, segments it does not hold
      const t = r.pick<Tensor>([
        { dtype: 'int64', dims: [2], data: new BigInt64Array(2) }, { dtype: 'uint8', dims: [3], data: new Uint8Array(3) },
        { dtype: 'float16', dims: [2], data: new Uint16Array(2) }, { dtype: 'float32', dims: [0], data: new Float32Array(0) },
      ]);
      const bad = encodeFrameBytes({ ...m, kind: 'data', role: r.pick(['input', 'skip', 'stream', 'eps', 'none']), roleIndex: r.int(0, 40), segment: r.pick([0, 1, 7, 999]) }, t);
      return { name: 'mis-typed: valid frame, wrong dtype / role / segment for this stage', chunks: [hello(JSON.stringify({ role: 'driver' })), bad] };
    }
    case 10: return { name: 'hello whose payload is not JSON', chunks: [hello(r.pick(['not json', '', '{', '\u0000\u0001', '[1,2', 'null', '42', '"s"', '{"role":7}', '{"role":"driver","peers":5}']))] };
    case 11: return { name: 'data before any hello', chunks: [good] };
    case 12: return { name: 'many tiny writes of a torn frame', chunks: [...good.subarray(0, good.length - 3)].map((b) => Uint8Array.of(b)), halfClose: true };
    default: return { name: 'stats / cancel frames with garbage payloads', chunks: [bytesOf(textFrame({ ...m, kind: r.pick(['stats', 'cancel', 'error']) }, String.fromCharCode(...r.bytes(50))))] };
  }
}

describe('a real stage process under bad frames', () => {
  it('rejects torn, oversized, mis-typed and garbage frames without crashing and keeps serving', async () => {
    expect(await healthy()).toBe(true);
    const r = new Prng(seed + 1);
    const n = fuzzCount('STAGE', 60);
    const names = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      const a = attack(r);
      names.set(a.name, (names.get(a.name) ?? 0) + 1);
      tally.add('bad_inputs_tried');
      await sendRaw(a.chunks, 150, a.halfClose, i % 2 ? a.origin : undefined);
      const alive = stage.alive && (i % 5 !== 4 || (await healthy()));
      expect(alive, `seed ${seed + 1} case ${i} (${a.name}) killed or wedged the stage; its output:\n${stage.tail(30)}`).toBe(true);
      tally.add('bad_inputs_handled');
    }
    console.log(`stage fuzz: ${n} attacks, seed ${seed + 1}: ${[...names].map(([k, v]) => `${k}=${v}`).join('; ')}`);
    expect(await healthy()).toBe(true);
    expect(stage.alive).toBe(true);
  }, 120_000);

  it('a frame error is logged precisely and the stage counts it (stats tornFrames)', async () => {
    const c = await RawStageClient.open(`127.0.0.1:${port}`, { secret, role: 'driver', stage: 0, id: 1 });
    c.sendText(controlMeta('stats', 1), '');
    const s = JSON.parse(frameText(await c.next((f) => f.header.kind === 'stats'))) as { tornFrames: number };
    c.destroy();
    expect(s.tornFrames).toBeGreaterThan(0);
    expect(stage.tail(60)).toMatch(/rejected a frame/);
  });

  it("the stage's log lines are JSON (pino) carrying its stage index", () => {
    const lines = readFileSync(stage.spec.logFile, 'utf8').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.every((l) => l.name === 'uvit-stage' && l.stage === 0 && typeof l.msg === 'string')).toBe(true);
    expect(lines.some((l) => /rejected a frame/.test(String(l.msg)))).toBe(true);
  });
});
