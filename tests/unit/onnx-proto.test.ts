// The hand-written ONNX protobuf writer: wire encoding, a graph ORT accepts (dynamic dims, attributes, contrib
// domain), and external data (TensorProto data_location=EXTERNAL with location/offset/length).
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { f, GraphBuilder } from '../../gpu-backend/onnx/graph.ts';
import { DataType } from '../../gpu-backend/onnx/onnx.ts';
import { encodeVarint, ProtoMsg } from '../../gpu-backend/onnx/proto.ts';

describe('protobuf wire encoding', () => {
  it('varints: small, multi-byte, 64-bit negative', () => {
    expect([...encodeVarint(1)]).toEqual([1]);
    expect([...encodeVarint(300)]).toEqual([0xac, 0x02]);
    expect([...encodeVarint(-1)]).toEqual([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    expect([...encodeVarint(2 ** 40)]).toEqual([0x80, 0x80, 0x80, 0x80, 0x80, 0x20]);
    expect(() => encodeVarint(2 ** 60)).toThrow(/not a safe integer/);
  });

  it('nested messages get their length prefix; strings and fixed32 floats', () => {
    const inner = new ProtoMsg().string(1, 'ab').float32(2, 1.5);
    const outer = new ProtoMsg().varint(1, 150).message(2, inner);
    // field1 varint 150 = 08 96 01; field2 len 9 = 12 09; inner: 0a 02 61 62, 15 00 00 c0 3f
    expect([...outer.encode()]).toEqual([0x08, 0x96, 0x01, 0x12, 0x09, 0x0a, 0x02, 0x61, 0x62, 0x15, 0x00, 0x00, 0xc0, 0x3f]);
  });
});

function smallModel(b: GraphBuilder, w: Float32Array) {
  const x = b.input('x', DataType.FLOAT, ['B', 4]);
  const wn = b.f32('w', [4, 3], w);
  const y = b.op('MatMul', [x, wn]);
  const ln = b.op('LayerNormalization', [y, b.f32('g', [3], Float32Array.of(1, 2, 3)), b.f32('bb', [3], Float32Array.of(0, 0, 1))], { axis: -1, epsilon: f(1e-5) });
  const s = b.op('Softmax', [ln], { axis: -1 });
  b.output(s, 'y', DataType.FLOAT, ['B', 3]);
  b.output(b.op('Gelu', [y], {}, 'com.microsoft'), 'g_out', DataType.FLOAT, ['B', 3]);
}

async function runSmall(model: Uint8Array | string) {
  const s = await ort.InferenceSession.create(model as Uint8Array);
  const x = new ort.Tensor('float32', Float32Array.from({ length: 12 }, (_, i) => i / 7 - 0.5), [3, 4]);
  const r = await s.run({ x });
  await s.release();
  return { y: r.y.data as Float32Array, g: r.g_out.data as Float32Array, dims: r.y.dims };
}

describe('GraphBuilder -> ORT', () => {
  const w = Float32Array.from({ length: 12 }, (_, i) => Math.sin(i));

  it('runs with a dynamic batch, float attributes and the com.microsoft domain', async () => {
    const b = new GraphBuilder('small');
    smallModel(b, w);
    expect(b.toModelDesc().opsets).toEqual([{ domain: '', version: 17 }, { domain: 'com.microsoft', version: 1 }]);
    const r = await runSmall(b.encode());
    expect(r.dims).toEqual([3, 3]);
    // check row 0 by hand: y = x @ w, LN, softmax
    const x0 = [0, 1, 2, 3].map((i) => i / 7 - 0.5);
    const y0 = [0, 1, 2].map((j) => x0.reduce((a, xi, i) => a + xi * w[i * 3 + j], 0));
    const mean = y0.reduce((a, v) => a + v, 0) / 3;
    const v = y0.reduce((a, t) => a + (t - mean) ** 2, 0) / 3;
    const ln = y0.map((t, j) => ((t - mean) / Math.sqrt(v + 1e-5)) * [1, 2, 3][j] + [0, 0, 1][j]);
    const z = ln.reduce((a, t) => a + Math.exp(t), 0);
    for (let j = 0; j < 3; j++) expect(r.y[j]).toBeCloseTo(Math.exp(ln[j]) / z, 5);
  });

  it('unique names and claimed names', () => {
    const b = new GraphBuilder('names');
    expect(b.unique('a')).toBe('a');
    expect(b.unique('a')).toBe('a_1');
    b.scope('blk', () => expect(b.unique('a')).toBe('blk/a'));
    b.input('x', DataType.FLOAT, [1]);
    expect(() => b.input('x', DataType.FLOAT, [1])).toThrow(/already used/);
    expect(() => b.op('Foo', [], { alpha: 0.5 })).toThrow(/wrapped with f\(\)/);
  });

  it('external data: initializers in a side file (location/offset/length) give the same results', async () => {
    const dir = join('/tmp', `a2-onnx-ext-${process.pid}`);
    mkdirSync(dir, { recursive: true });
    const inline = new GraphBuilder('small');
    smallModel(inline, w);
    const chunks: Uint8Array[] = [];
    const ext = new GraphBuilder('small');
    smallModel(ext, w);
    const model = ext.encode({ location: 'small.data', write: (c) => chunks.push(c.slice()), minBytes: 1, align: 16 });
    writeFileSync(join(dir, 'small.data'), Buffer.concat(chunks));
    writeFileSync(join(dir, 'small.onnx'), model);
    // the weight bytes are in the inline model and in the data file, not in the external-data model
    const wBytes = Buffer.from(w.buffer, w.byteOffset, w.byteLength);
    expect(Buffer.from(inline.encode()).includes(wBytes)).toBe(true);
    expect(Buffer.from(model).includes(wBytes)).toBe(false);
    expect(readFileSync(join(dir, 'small.data')).includes(wBytes)).toBe(true);
    expect(statSync(join(dir, 'small.data')).size).toBeGreaterThanOrEqual(48 + 12 + 12);
    expect(readFileSync(join(dir, 'small.onnx')).includes(Buffer.from('small.data'))).toBe(true);
    const a = await runSmall(inline.encode());
    const b = await runSmall(join(dir, 'small.onnx'));
    expect([...b.y]).toEqual([...a.y]);
    expect([...b.g]).toEqual([...a.g]);

    // streaming mode: the builder writes each big initializer out as it is added
    const chunks2: Uint8Array[] = [];
    const st = new GraphBuilder('small', 17, { location: 'stream.data', write: (c) => chunks2.push(c.slice()), minBytes: 1, align: 16 });
    smallModel(st, w);
    expect(chunks2.length).toBeGreaterThan(0); // written before encode()
    writeFileSync(join(dir, 'stream.onnx'), st.encode());
    writeFileSync(join(dir, 'stream.data'), Buffer.concat(chunks2));
    expect(Buffer.from(readFileSync(join(dir, 'stream.onnx'))).includes(wBytes)).toBe(false);
    const c = await runSmall(join(dir, 'stream.onnx'));
    expect([...c.y]).toEqual([...a.y]);
  });
});
