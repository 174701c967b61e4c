// Binary tensor frame: the one wire format between driver and stage processes (docs/protocol.md §2).
// Runtime-agnostic: DataView / Uint8Array only, so it can run in Node and in workerd.
//
// Layout (little-endian), HEADER_BYTES = 84, then `payloadBytes` of raw payload:
//   0 magic u32 'UVTF'   4 version u16   6 kind u8   7 flags u8 (bit0: f32 tensor carried as f16)
//   8 jobId 16 bytes    24 origin u32 (driver id)   28 step u32   32 microBatch u32
//  36 segment u16 (target route segment, 0xffff = none)   38 roleIndex u16 (skip i / input slot)
//  40 role u8   41 dtype u8   42 rank u8   43 reserved u8   44 dims 8 x u32
//  76 payloadBytes u32   80 crc32 u32 over bytes [0,80) then the payload
// A CRC mismatch means a torn or corrupted frame: the stream cannot be trusted any further.
// Kinds: data (a tensor), error (UTF-8 text for the job), hello / stats (UTF-8 JSON), cancel (the job ends), auth (the
// connection handshake, gpu-backend/pipeline/wire/auth.ts), job (a driver opens a job on a stage; the stage echoes it).

import { type Crc32Fn, crc32 } from './crc32.ts';
import { f16ToF32, f32ToF16 } from './halfFloat.ts';
import type { Tensor } from './tensor.ts';

export const FRAME_MAGIC = 0x46545655; // bytes 'U','V','T','F'
export const FRAME_VERSION = 1;
export const HEADER_BYTES = 84;
export const MAX_RANK = 8;
export const NO_SEGMENT = 0xffff;
/** job id of control frames that concern no job (hello, stats, auth) */
export const NO_JOB = '0'.repeat(32);
const CRC_OFFSET = 80;
const FLAG_F16_WIRE = 1;

export type FrameKind = 'data' | 'error' | 'hello' | 'cancel' | 'stats' | 'auth' | 'job';
export type TensorRole = 'none' | 'stream' | 'skip' | 'eps' | 'input';
export type WireDType = 'float32' | 'float16' | 'int64' | 'uint8';

const KINDS: FrameKind[] = ['data', 'error', 'hello', 'cancel', 'stats', 'auth', 'job'];
const ROLES: TensorRole[] = ['none', 'stream', 'skip', 'eps', 'input'];
const DTYPES: (WireDType | undefined)[] = [undefined, 'float32', 'float16', 'int64', 'uint8'];
const DTYPE_BYTES: Record<WireDType, number> = { float32: 4, float16: 2, int64: 8, uint8: 1 };

/** model-input slots carried with role 'input' (roleIndex) */
export const INPUT_SLOTS = ['x', 'timesteps', 'y', 'context'] as const;
export type InputName = (typeof INPUT_SLOTS)[number];

export interface FrameMeta {
  kind: FrameKind;
  /** 32 lowercase hex chars (16 bytes); see jobIdOf (jobId.ts) */
  jobId: string;
  origin: number;
  step: number;
  microBatch: number;
  segment: number;
  role: TensorRole;
  roleIndex: number;
}

export interface FrameHeader extends FrameMeta {
  /** dtype on the wire */
  wireDtype: WireDType;
  /** dtype the receiver gets (float32 when the f16 transport flag is set) */
  dtype: WireDType;
  f16Wire: boolean;
  dims: number[];
  payloadBytes: number;
  crc: number;
}

export interface Frame {
  header: FrameHeader;
  /** the decoded tensor (data frames) or raw bytes as a uint8 tensor (error/hello/stats payloads) */
  tensor: Tensor<WireDType>;
}

export interface FrameLimits {
  /** largest payload accepted, bytes (default 1 GiB) */
  maxPayloadBytes?: number;
  /** largest single dimension accepted (default 2^28) */
  maxDim?: number;
}

export type FrameErrorCode = 'bad_magic' | 'bad_version' | 'bad_header' | 'oversized' | 'torn' | 'dtype';

export class FrameError extends Error {
  readonly code: FrameErrorCode;
  /** header fields when the header itself parsed (lets a receiver fail the right job) */
  readonly header?: FrameHeader;
  constructor(code: FrameErrorCode, message: string, header?: FrameHeader) {
    super(message);
    this.name = 'FrameError';
    this.code = code;
    this.header = header;
  }
}

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error('shared/frame.ts assumes a little-endian host (typed arrays are sent as raw bytes)');
}

// ---------- encode ----------
export interface EncodeOptions {
  /** carry float32 tensors as float16 on the wire (the receiver gets float32 back) */
  f16?: boolean;
  crc?: Crc32Fn;
}

export interface EncodedFrame {
  header: Uint8Array;
  payload: Uint8Array;
}

function wireDtypeOf(dtype: string): WireDType {
  if (dtype === 'float32' || dtype === 'float16' || dtype === 'int64' || dtype === 'uint8') return dtype;
  throw new FrameError('dtype', `frame: unsupported tensor dtype ${dtype} (supported: float32, float16, int64, uint8)`);
}

/** encode a frame as a header and a payload view (no copy of the tensor unless converted to f16) */
export function encodeFrame(meta: FrameMeta, tensor: Tensor, opts: EncodeOptions = {}): EncodedFrame {
  let dtype = wireDtypeOf(tensor.dtype);
  const f16Wire = !!opts.f16 && dtype === 'float32' && meta.kind === 'data';
  let payload: Uint8Array;
  if (f16Wire) {
    const h = f32ToF16(tensor.data as Float32Array);
    payload = new Uint8Array(h.buffer);
    dtype = 'float16';
  } else {
    const d = tensor.data as ArrayBufferView;
    payload = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  }
  if (tensor.dims.length > MAX_RANK) {
    throw new FrameError('bad_header', `frame: rank ${tensor.dims.length} exceeds the maximum ${MAX_RANK}`);
  }
  let n = 1;
  for (const d of tensor.dims) n *= d;
  if (n * DTYPE_BYTES[dtype] !== payload.length) {
    throw new FrameError(
      'bad_header',
      `frame: tensor data has ${payload.length} bytes, dims [${tensor.dims.join(',')}] of ${dtype} need ${n * DTYPE_BYTES[dtype]}`,
    );
  }
  if (payload.length > 0xffffffff) throw new FrameError('oversized', `frame: payload ${payload.length} B exceeds 4 GiB`);
  const header = new Uint8Array(HEADER_BYTES);
  const v = new DataView(header.buffer);
  v.setUint32(0, FRAME_MAGIC, true);
  v.setUint16(4, FRAME_VERSION, true);
  v.setUint8(6, KINDS.indexOf(meta.kind));
  v.setUint8(7, f16Wire ? FLAG_F16_WIRE : 0);
  const idHex = meta.jobId;
  if (!/^[0-9a-f]{32}$/.test(idHex)) throw new FrameError('bad_header', `frame: job id must be 32 hex chars, got "${idHex}"`);
  for (let i = 0; i < 16; i++) header[8 + i] = parseInt(idHex.slice(2 * i, 2 * i + 2), 16);
  v.setUint32(24, meta.origin >>> 0, true);
  v.setUint32(28, meta.step >>> 0, true);
  v.setUint32(32, meta.microBatch >>> 0, true);
  v.setUint16(36, meta.segment, true);
  v.setUint16(38, meta.roleIndex, true);
  v.setUint8(40, ROLES.indexOf(meta.role));
  v.setUint8(41, DTYPES.indexOf(dtype));
  v.setUint8(42, tensor.dims.length);
  tensor.dims.forEach((d, i) => v.setUint32(44 + 4 * i, d, true));
  v.setUint32(76, payload.length, true);
  const crc = opts.crc ?? crc32;
  v.setUint32(CRC_OFFSET, crc(payload, crc(header.subarray(0, CRC_OFFSET), 0)), true);
  return { header, payload };
}

/** header + payload in one buffer (tests, small control frames) */
export function encodeFrameBytes(meta: FrameMeta, tensor: Tensor, opts: EncodeOptions = {}): Uint8Array {
  const { header, payload } = encodeFrame(meta, tensor, opts);
  const out = new Uint8Array(header.length + payload.length);
  out.set(header, 0);
  out.set(payload, header.length);
  return out;
}

/** a control frame (error/hello/cancel/stats) whose payload is UTF-8 text */
export function textFrame(meta: FrameMeta, text: string, opts: EncodeOptions = {}): EncodedFrame {
  const bytes = new TextEncoder().encode(text);
  return encodeFrame(meta, { dtype: 'uint8', dims: [bytes.length], data: bytes }, opts);
}

export function frameText(frame: Frame): string {
  const d = frame.tensor.data as Uint8Array;
  return new TextDecoder().decode(d);
}

// ---------- decode ----------
function describe(h: Pick<FrameHeader, 'jobId' | 'step' | 'microBatch'>): string {
  return `job ${h.jobId} step ${h.step} micro-batch ${h.microBatch}`;
}

/** parse and validate the fixed header (not the CRC, which needs the payload) */
export function decodeHeader(bytes: Uint8Array, limits: FrameLimits = {}): FrameHeader {
  if (bytes.length < HEADER_BYTES) {
    throw new FrameError('bad_header', `frame: header needs ${HEADER_BYTES} bytes, got ${bytes.length}`);
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, HEADER_BYTES);
  const magic = v.getUint32(0, true);
  if (magic !== FRAME_MAGIC) {
    throw new FrameError('bad_magic', `frame: bad magic 0x${magic.toString(16).padStart(8, '0')}, expected 0x${FRAME_MAGIC.toString(16)} ("UVTF")`);
  }
  const version = v.getUint16(4, true);
  if (version !== FRAME_VERSION) {
    throw new FrameError('bad_version', `frame: unsupported version ${version}, this build speaks version ${FRAME_VERSION}`);
  }
  const kind = KINDS[v.getUint8(6)];
  const role = ROLES[v.getUint8(40)];
  const wireDtype = DTYPES[v.getUint8(41)];
  const flags = v.getUint8(7);
  const rank = v.getUint8(42);
  let jobId = '';
  for (let i = 0; i < 16; i++) jobId += bytes[8 + i].toString(16).padStart(2, '0');
  const meta = { jobId, step: v.getUint32(28, true), microBatch: v.getUint32(32, true) };
  if (!kind) throw new FrameError('bad_header', `frame: unknown kind code ${v.getUint8(6)} (${describe(meta)})`);
  if (!role) throw new FrameError('bad_header', `frame: unknown tensor role code ${v.getUint8(40)} (${describe(meta)})`);
  if (!wireDtype) throw new FrameError('dtype', `frame: unknown dtype code ${v.getUint8(41)} (${describe(meta)})`);
  if (rank > MAX_RANK) throw new FrameError('bad_header', `frame: rank ${rank} exceeds the maximum ${MAX_RANK} (${describe(meta)})`);
  const f16Wire = (flags & FLAG_F16_WIRE) !== 0;
  if (f16Wire && wireDtype !== 'float16') {
    throw new FrameError('bad_header', `frame: f16-transport flag set on a ${wireDtype} payload (${describe(meta)})`);
  }
  const maxDim = limits.maxDim ?? 2 ** 28;
  const maxPayload = limits.maxPayloadBytes ?? 2 ** 30;
  const dims: number[] = [];
  let n = 1;
  for (let i = 0; i < rank; i++) {
    const d = v.getUint32(44 + 4 * i, true);
    if (d > maxDim) throw new FrameError('oversized', `frame: dim ${i} = ${d} exceeds the maximum ${maxDim} (${describe(meta)})`);
    dims.push(d);
    n *= d;
  }
  const payloadBytes = v.getUint32(76, true);
  if (payloadBytes > maxPayload) {
    throw new FrameError('oversized', `frame: payload ${payloadBytes} B exceeds the maximum ${maxPayload} B (${describe(meta)})`);
  }
  if (n * DTYPE_BYTES[wireDtype] !== payloadBytes) {
    throw new FrameError(
      'bad_header',
      `frame: payload ${payloadBytes} B does not match dims [${dims.join(',')}] of ${wireDtype} (${n * DTYPE_BYTES[wireDtype]} B) (${describe(meta)})`,
    );
  }
  return {
    kind,
    ...meta,
    origin: v.getUint32(24, true),
    segment: v.getUint16(36, true),
    roleIndex: v.getUint16(38, true),
    role,
    wireDtype,
    dtype: f16Wire ? 'float32' : wireDtype,
    f16Wire,
    dims,
    payloadBytes,
    crc: v.getUint32(CRC_OFFSET, true),
  };
}

export interface DecodeOptions extends FrameLimits {
  crc?: Crc32Fn;
  /** reject a data frame whose (receiver-side) dtype differs */
  expectDtype?: WireDType;
}

/**
 * check the CRC and build the tensor. The tensor gets its own aligned buffer: `payload` is copied unless it already
 * is a whole standalone ArrayBuffer (the stream decoder's reassembled payloads), which is then taken over.
 */
export function decodeBody(header: FrameHeader, headerBytes: Uint8Array, payload: Uint8Array, opts: DecodeOptions = {}): Frame {
  if (payload.length !== header.payloadBytes) {
    throw new FrameError('torn', `torn frame: payload has ${payload.length} B, header says ${header.payloadBytes} B (${describe(header)})`, header);
  }
  const crcFn = opts.crc ?? crc32;
  const got = crcFn(payload, crcFn(headerBytes.subarray(0, CRC_OFFSET), 0));
  if (got !== header.crc) {
    throw new FrameError(
      'torn',
      `torn frame: CRC32 mismatch (header 0x${header.crc.toString(16)}, computed 0x${got.toString(16)}) for ${header.kind} frame of ${describe(header)}`,
      header,
    );
  }
  if (opts.expectDtype && header.kind === 'data' && header.dtype !== opts.expectDtype) {
    throw new FrameError('dtype', `frame: dtype mismatch for ${describe(header)}: expected ${opts.expectDtype}, got ${header.dtype}`, header);
  }
  let copy = payload;
  if (payload.byteOffset !== 0 || payload.buffer.byteLength !== payload.length || !(payload.buffer instanceof ArrayBuffer)) {
    copy = new Uint8Array(payload.length);
    copy.set(payload);
  }
  const buf = copy.buffer as ArrayBuffer;
  let tensor: Tensor<WireDType>;
  switch (header.wireDtype) {
    case 'float32':
      tensor = { dtype: 'float32', dims: header.dims, data: new Float32Array(buf) };
      break;
    case 'float16': {
      const h = new Uint16Array(buf);
      tensor = header.f16Wire
        ? { dtype: 'float32', dims: header.dims, data: f16ToF32(h) }
        : { dtype: 'float16', dims: header.dims, data: h };
      break;
    }
    case 'int64':
      tensor = { dtype: 'int64', dims: header.dims, data: new BigInt64Array(buf) };
      break;
    default:
      tensor = { dtype: 'uint8', dims: header.dims, data: copy };
  }
  return { header, tensor };
}

/** decode one complete frame from a single buffer (must hold exactly one frame) */
export function decodeFrame(bytes: Uint8Array, opts: DecodeOptions = {}): Frame {
  const header = decodeHeader(bytes, opts);
  const end = HEADER_BYTES + header.payloadBytes;
  if (bytes.length < end) {
    throw new FrameError('torn', `torn frame: ${bytes.length - HEADER_BYTES} of ${header.payloadBytes} payload bytes present (${describe(header)})`, header);
  }
  if (bytes.length > end) {
    throw new FrameError('bad_header', `frame: ${bytes.length - end} trailing bytes after the payload (${describe(header)})`, header);
  }
  return decodeBody(header, bytes, bytes.subarray(HEADER_BYTES, end), opts);
}
