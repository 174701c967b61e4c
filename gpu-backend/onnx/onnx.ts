// ONNX ModelProto encoding (field numbers from onnx/onnx.proto, IR version 8).
// Plain JS descriptions in, protobuf bytes out; large initializers can go to an external data file.
import { ProtoMsg } from './proto.ts';

export const DataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  BFLOAT16: 16,
} as const;
export type DataTypeCode = (typeof DataType)[keyof typeof DataType];

/** A dimension: a fixed size, or a symbolic name (dim_param) for a dynamic one. */
export type Dim = number | string;

export interface ValueInfo {
  name: string;
  elemType: DataTypeCode;
  shape: Dim[];
}

export interface TensorDesc {
  name: string;
  dataType: DataTypeCode;
  dims: number[];
  /** little-endian raw bytes (raw_data); empty when `external` is set */
  raw: Uint8Array;
  /** already written to an external data file at this offset (length = byteLength) */
  external?: { location: string; offset: number; byteLength: number };
}

export type AttrValue =
  | { kind: 'int'; value: number }
  | { kind: 'float'; value: number }
  | { kind: 'string'; value: string }
  | { kind: 'ints'; value: number[] }
  | { kind: 'floats'; value: number[] }
  | { kind: 'tensor'; value: TensorDesc };

export interface NodeDesc {
  opType: string;
  domain: string;
  name: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, AttrValue>;
}

export interface OpsetImport {
  domain: string;
  version: number;
}

export interface ModelDesc {
  graphName: string;
  nodes: NodeDesc[];
  initializers: TensorDesc[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  opsets: OpsetImport[];
  irVersion?: number;
  producer?: string;
  docString?: string;
}

export interface ExternalDataOptions {
  /** file name written into each external tensor's `location` (relative to the model file) */
  location: string;
  /** receives the data file's bytes, in order, starting at offset 0 */
  write: (chunk: Uint8Array) => void;
  /** initializers with at least this many bytes go external (default 1024) */
  minBytes?: number;
  /** alignment of each tensor's offset in the data file (default 64) */
  align?: number;
}

const AttrType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7 } as const;

export function encodeTensor(t: TensorDesc, external?: { location: string; offset: number; byteLength: number }): ProtoMsg {
  const m = new ProtoMsg();
  m.varints(1, t.dims); // dims
  m.varint(2, t.dataType); // data_type
  m.string(8, t.name); // name
  external ??= t.external;
  if (external) {
    const entry = (k: string, v: string) => new ProtoMsg().string(1, k).string(2, v);
    m.message(13, entry('location', external.location));
    m.message(13, entry('offset', String(external.offset)));
    m.message(13, entry('length', String(external.byteLength)));
    m.varint(14, 1); // data_location = EXTERNAL
  } else {
    m.bytes(9, t.raw); // raw_data
  }
  return m;
}

function encodeAttr(name: string, a: AttrValue): ProtoMsg {
  const m = new ProtoMsg().string(1, name);
  switch (a.kind) {
    case 'int':
      return m.varint(3, a.value).varint(20, AttrType.INT);
    case 'float':
      return m.float32(2, a.value).varint(20, AttrType.FLOAT);
    case 'string':
      return m.string(4, a.value).varint(20, AttrType.STRING);
    case 'ints':
      return m.varints(8, a.value).varint(20, AttrType.INTS);
    case 'floats':
      for (const f of a.value) m.float32(7, f);
      return m.varint(20, AttrType.FLOATS);
    case 'tensor':
      return m.message(5, encodeTensor(a.value)).varint(20, AttrType.TENSOR);
  }
}

function encodeNode(n: NodeDesc): ProtoMsg {
  const m = new ProtoMsg();
  for (const i of n.inputs) m.string(1, i);
  for (const o of n.outputs) m.string(2, o);
  m.string(3, n.name);
  m.string(4, n.opType);
  for (const [k, v] of Object.entries(n.attrs)) m.message(5, encodeAttr(k, v));
  if (n.domain) m.string(7, n.domain);
  return m;
}

function encodeValueInfo(v: ValueInfo): ProtoMsg {
  const shape = new ProtoMsg();
  for (const d of v.shape) {
    const dim = new ProtoMsg();
    if (typeof d === 'number') dim.varint(1, d);
    else dim.string(2, d);
    shape.message(1, dim);
  }
  const tensorType = new ProtoMsg().varint(1, v.elemType).message(2, shape);
  const type = new ProtoMsg().message(1, tensorType);
  return new ProtoMsg().string(1, v.name).message(2, type);
}

/**
 * Serialises a model. With `external`, big initializers are streamed to `external.write` and referenced by offset
 * (tensors already written out by a streaming GraphBuilder keep their own location and offset).
 */
export function encodeModel(model: ModelDesc, external?: ExternalDataOptions): Uint8Array {
  const g = new ProtoMsg();
  for (const n of model.nodes) g.message(1, encodeNode(n));
  g.string(2, model.graphName);
  let offset = 0;
  const align = external?.align ?? 64;
  const minBytes = external?.minBytes ?? 1024;
  for (const t of model.initializers) {
    if (external && !t.external && t.raw.byteLength >= minBytes) {
      const pad = (align - (offset % align)) % align;
      if (pad) external.write(new Uint8Array(pad));
      offset += pad;
      g.message(5, encodeTensor(t, { location: external.location, offset, byteLength: t.raw.byteLength }));
      external.write(t.raw);
      offset += t.raw.byteLength;
    } else {
      g.message(5, encodeTensor(t));
    }
  }
  for (const v of model.inputs) g.message(11, encodeValueInfo(v));
  for (const v of model.outputs) g.message(12, encodeValueInfo(v));

  const m = new ProtoMsg();
  m.varint(1, model.irVersion ?? 8);
  m.string(2, model.producer ?? 'uvit-video');
  if (model.docString) m.string(6, model.docString);
  m.message(7, g);
  for (const o of model.opsets) m.message(8, new ProtoMsg().string(1, o.domain).varint(2, o.version));
  const size = m.size();
  if (size > 2 ** 31 - 1) {
    throw new Error(`ONNX model is ${size} bytes, over the 2 GiB protobuf limit: build it with external data`);
  }
  return m.encode();
}

/** Little-endian raw bytes view of a typed array (no copy on little-endian hosts, which is every supported host). */
export function rawBytes(a: Float32Array | Int32Array | BigInt64Array | Uint8Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}
