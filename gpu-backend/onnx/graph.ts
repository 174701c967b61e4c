// A small graph builder so model code reads like the spec: b.op('MatMul', [x, w]) returns the output name.
import {
  type AttrValue,
  DataType,
  type DataTypeCode,
  type Dim,
  encodeModel,
  type ExternalDataOptions,
  type ModelDesc,
  type NodeDesc,
  type OpsetImport,
  rawBytes,
  type TensorDesc,
  type ValueInfo,
} from './onnx.ts';

/** Attribute shorthand: integer number -> INT, number[] -> INTS, string -> STRING; floats must be wrapped with f(). */
export type Attr = number | number[] | string | AttrValue;
export const f = (value: number): AttrValue => ({ kind: 'float', value });
export const floats = (value: number[]): AttrValue => ({ kind: 'floats', value });

function toAttr(name: string, a: Attr): AttrValue {
  if (typeof a === 'number') {
    if (!Number.isInteger(a)) throw new Error(`attribute ${name}=${a}: non-integer numbers must be wrapped with f()`);
    return { kind: 'int', value: a };
  }
  if (typeof a === 'string') return { kind: 'string', value: a };
  if (Array.isArray(a)) return { kind: 'ints', value: a };
  return a;
}

export const MS_DOMAIN = 'com.microsoft';

export class GraphBuilder {
  readonly nodes: NodeDesc[] = [];
  readonly initializers: TensorDesc[] = [];
  readonly inputs: ValueInfo[] = [];
  readonly outputs: ValueInfo[] = [];
  private readonly names = new Set<string>();
  private readonly counters = new Map<string, number>();
  private readonly scopes: string[] = [];
  private usesMs = false;

  readonly name: string;
  readonly opset: number;
  private readonly external?: ExternalDataOptions;
  private externalOffset = 0;

  /**
   * With `external`, initializers of at least `minBytes` are written to the external data sink as soon as they are
   * added (and only referenced afterwards), so a builder never holds a big model's weights twice.
   */
  constructor(name: string, opset = 17, external?: ExternalDataOptions) {
    this.name = name;
    this.opset = opset;
    this.external = external;
  }

  /** A fresh value name with the current scope as prefix, e.g. "in_blocks.0/attn/MatMul_1". */
  unique(base: string): string {
    const full = [...this.scopes, base].join('/');
    let n = this.counters.get(full) ?? 0;
    let name = n === 0 ? full : `${full}_${n}`;
    while (this.names.has(name)) name = `${full}_${++n}`;
    this.counters.set(full, n + 1);
    this.names.add(name);
    return name;
  }

  /** Claims an exact name (graph inputs/outputs); throws if already used. */
  claim(name: string): string {
    if (this.names.has(name)) throw new Error(`graph ${this.name}: value name "${name}" is already used`);
    this.names.add(name);
    return name;
  }

  scope<T>(name: string, body: () => T): T {
    this.scopes.push(name);
    try {
      return body();
    } finally {
      this.scopes.pop();
    }
  }

  input(name: string, elemType: DataTypeCode, shape: Dim[]): string {
    this.inputs.push({ name: this.claim(name), elemType, shape });
    return name;
  }

  /** Declares `value` as graph output `name` (through an Identity node when the names differ). */
  output(value: string, name: string, elemType: DataTypeCode, shape: Dim[]): void {
    if (value !== name) {
      this.claim(name);
      this.nodes.push({ opType: 'Identity', domain: '', name: `${name}/Identity`, inputs: [value], outputs: [name], attrs: {} });
    }
    this.outputs.push({ name, elemType, shape });
  }

  initializer(base: string, dataType: DataTypeCode, dims: number[], data: Float32Array | Int32Array | BigInt64Array | Uint8Array): string {
    const n = dims.reduce((a, b) => a * b, 1);
    if (n !== data.length) throw new Error(`initializer ${base}: dims [${dims}] need ${n} elements, got ${data.length}`);
    const name = this.unique(base);
    const raw = rawBytes(data);
    const ext = this.external;
    if (ext && raw.byteLength >= (ext.minBytes ?? 1024)) {
      const align = ext.align ?? 64;
      const pad = (align - (this.externalOffset % align)) % align;
      if (pad) ext.write(new Uint8Array(pad));
      const offset = this.externalOffset + pad;
      ext.write(raw);
      this.externalOffset = offset + raw.byteLength;
      this.initializers.push({ name, dataType, dims, raw: new Uint8Array(0), external: { location: ext.location, offset, byteLength: raw.byteLength } });
    } else {
      this.initializers.push({ name, dataType, dims, raw });
    }
    return name;
  }

  f32(base: string, dims: number[], data: Float32Array): string {
    return this.initializer(base, DataType.FLOAT, dims, data);
  }

  /** int64 constant (shapes, axes, indices), as an initializer */
  i64(values: number[], dims: number[] = [values.length]): string {
    return this.initializer('const_i64', DataType.INT64, dims, BigInt64Array.from(values, (v) => BigInt(v)));
  }

  /** float32 scalar constant */
  scalar(value: number): string {
    return this.initializer('const_f32', DataType.FLOAT, [], Float32Array.of(value));
  }

  /** Adds a node with `nOut` outputs and returns their names. */
  node(opType: string, inputs: string[], attrs: Record<string, Attr> = {}, nOut = 1, domain = ''): string[] {
    if (domain === MS_DOMAIN) this.usesMs = true;
    const outputs = Array.from({ length: nOut }, () => this.unique(opType));
    const a: Record<string, AttrValue> = {};
    for (const [k, v] of Object.entries(attrs)) a[k] = toAttr(k, v);
    this.nodes.push({ opType, domain, name: `${outputs[0]}/node`, inputs, outputs, attrs: a });
    return outputs;
  }

  /** Single-output node. */
  op(opType: string, inputs: string[], attrs: Record<string, Attr> = {}, domain = ''): string {
    return this.node(opType, inputs, attrs, 1, domain)[0];
  }

  toModelDesc(): ModelDesc {
    const opsets: OpsetImport[] = [{ domain: '', version: this.opset }];
    if (this.usesMs) opsets.push({ domain: MS_DOMAIN, version: 1 });
    return {
      graphName: this.name,
      nodes: this.nodes,
      initializers: this.initializers,
      inputs: this.inputs,
      outputs: this.outputs,
      opsets,
    };
  }

  /** Serialises the model; `external` (when the builder was not made with one) moves big initializers out now. */
  encode(external?: ExternalDataOptions): Uint8Array {
    if (external && this.external) throw new Error(`graph ${this.name}: built with streaming external data already`);
    return encodeModel(this.toModelDesc(), external);
  }
}
