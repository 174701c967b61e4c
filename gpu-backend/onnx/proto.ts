// Minimal protobuf wire encoder: enough for ONNX (varint, fixed32, length-delimited, nested messages).
// Messages are built as a tree of parts and serialised in one pass into a single preallocated buffer, so large
// byte payloads (weights) are referenced, never copied until the final write.

const WT_VARINT = 0;
const WT_LEN = 2;
const WT_FIXED32 = 5;

const textEncoder = new TextEncoder();

function varintSize(v: bigint): number {
  let n = 1;
  while (v >= 0x80n) {
    v >>= 7n;
    n++;
  }
  return n;
}

/** Encodes an integer (negative numbers as 64-bit two's complement, as protobuf int64/int32 do). */
export function encodeVarint(value: number | bigint): Uint8Array {
  let v = typeof value === 'bigint' ? value : BigInt(value);
  if (typeof value === 'number' && !Number.isSafeInteger(value)) {
    throw new Error(`varint: ${value} is not a safe integer`);
  }
  if (v < 0n) v = BigInt.asUintN(64, v);
  const out = new Uint8Array(varintSize(v));
  let i = 0;
  while (v >= 0x80n) {
    out[i++] = Number(v & 0x7fn) | 0x80;
    v >>= 7n;
  }
  out[i] = Number(v);
  return out;
}

function tag(field: number, wireType: number): Uint8Array {
  return encodeVarint((field << 3) | wireType);
}

type Part = Uint8Array | { head: Uint8Array; body: Uint8Array | ProtoMsg };

export class ProtoMsg {
  private parts: Part[] = [];
  private cachedSize = -1;

  varint(field: number, value: number | bigint): this {
    this.push(concat(tag(field, WT_VARINT), encodeVarint(value)));
    return this;
  }

  /** repeated scalar written unpacked (one tag per element): valid for proto2 and proto3 parsers alike */
  varints(field: number, values: readonly (number | bigint)[]): this {
    for (const v of values) this.varint(field, v);
    return this;
  }

  float32(field: number, value: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.push(concat(tag(field, WT_FIXED32), b));
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, textEncoder.encode(value));
  }

  bytes(field: number, value: Uint8Array): this {
    this.push({ head: concat(tag(field, WT_LEN), encodeVarint(value.byteLength)), body: value });
    return this;
  }

  message(field: number, msg: ProtoMsg): this {
    // the length prefix is computed at serialisation time (the child may still grow until then)
    this.push({ head: tag(field, WT_LEN), body: msg });
    return this;
  }

  size(): number {
    if (this.cachedSize >= 0) return this.cachedSize;
    let n = 0;
    for (const p of this.parts) {
      if (p instanceof Uint8Array) n += p.byteLength;
      else if (p.body instanceof ProtoMsg) {
        const s = p.body.size();
        n += p.head.byteLength + encodeVarint(s).byteLength + s;
      } else n += p.head.byteLength + p.body.byteLength;
    }
    this.cachedSize = n;
    return n;
  }

  encode(): Uint8Array {
    const total = this.size();
    const out = new Uint8Array(total);
    const end = this.writeInto(out, 0);
    if (end !== total) throw new Error(`protobuf: wrote ${end} bytes, expected ${total}`);
    return out;
  }

  private writeInto(out: Uint8Array, at: number): number {
    for (const p of this.parts) {
      if (p instanceof Uint8Array) {
        out.set(p, at);
        at += p.byteLength;
      } else if (p.body instanceof ProtoMsg) {
        out.set(p.head, at);
        at += p.head.byteLength;
        const len = encodeVarint(p.body.size());
        out.set(len, at);
        at += len.byteLength;
        at = p.body.writeInto(out, at);
      } else {
        out.set(p.head, at);
        at += p.head.byteLength;
        out.set(p.body, at);
        at += p.body.byteLength;
      }
    }
    return at;
  }

  private push(p: Part): void {
    this.cachedSize = -1;
    this.parts.push(p);
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a, 0);
  out.set(b, a.byteLength);
  return out;
}
