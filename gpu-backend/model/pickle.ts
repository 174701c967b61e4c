// A restricted unpickler for what torch.save(state_dict) writes (protocols 2-4): it only builds data. Each opcode is
// on an explicit allow-list, and the only globals are the four torch/collections names a state_dict refers to; they are
// never looked up or called as code, each is interpreted here by what it means. Anything else (os.system, INST, OBJ,
// builtins, ...) stops the read with an error naming it, before any later byte is looked at.

/** The storage dtypes a torch.*Storage global stands for (safetensors dtype names). */
export type StorageDType = 'F32' | 'F16' | 'BF16';

const STORAGE_TYPES: Record<string, StorageDType> = {
  FloatStorage: 'F32',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
};

export class PyGlobal {
  readonly module: string;
  readonly name: string;
  constructor(module: string, name: string) {
    this.module = module;
    this.name = name;
  }
  toString(): string {
    return `${this.module}.${this.name}`;
  }
}

/** A persistent storage reference: ('storage', torch.XStorage, key, location, numel). */
export interface PyStorage {
  kind: 'storage';
  dtype: StorageDType;
  key: string;
  numel: number;
}

/** torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...), in elements. */
export interface PyTensor {
  kind: 'tensor';
  storage: PyStorage;
  offset: number;
  shape: number[];
  stride: number[];
}

export class PyDict {
  readonly map = new Map<string | number, PyValue>();
}

export type PyValue = null | boolean | number | bigint | string | PyGlobal | PyStorage | PyTensor | PyDict | readonly PyValue[];

const ALLOWED_GLOBALS = new Set([
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_parameter',
  ...Object.keys(STORAGE_TYPES).map((s) => `torch.${s}`),
]);

// every opcode of pickle protocols 0-5, for naming a refused one
const OPCODE_NAMES: Record<number, string> = {
  0x28: 'MARK', 0x2e: 'STOP', 0x30: 'POP', 0x31: 'POP_MARK', 0x32: 'DUP', 0x46: 'FLOAT', 0x49: 'INT', 0x4a: 'BININT',
  0x4b: 'BININT1', 0x4c: 'LONG', 0x4d: 'BININT2', 0x4e: 'NONE', 0x50: 'PERSID', 0x51: 'BINPERSID', 0x52: 'REDUCE',
  0x53: 'STRING', 0x54: 'BINSTRING', 0x55: 'SHORT_BINSTRING', 0x56: 'UNICODE', 0x58: 'BINUNICODE', 0x61: 'APPEND',
  0x62: 'BUILD', 0x63: 'GLOBAL', 0x64: 'DICT', 0x7d: 'EMPTY_DICT', 0x65: 'APPENDS', 0x67: 'GET', 0x68: 'BINGET',
  0x69: 'INST', 0x6a: 'LONG_BINGET', 0x6c: 'LIST', 0x5d: 'EMPTY_LIST', 0x6f: 'OBJ', 0x70: 'PUT', 0x71: 'BINPUT',
  0x72: 'LONG_BINPUT', 0x73: 'SETITEM', 0x74: 'TUPLE', 0x29: 'EMPTY_TUPLE', 0x75: 'SETITEMS', 0x47: 'BINFLOAT',
  0x80: 'PROTO', 0x81: 'NEWOBJ', 0x82: 'EXT1', 0x83: 'EXT2', 0x84: 'EXT4', 0x85: 'TUPLE1', 0x86: 'TUPLE2',
  0x87: 'TUPLE3', 0x88: 'NEWTRUE', 0x89: 'NEWFALSE', 0x8a: 'LONG1', 0x8b: 'LONG4', 0x42: 'BINBYTES',
  0x43: 'SHORT_BINBYTES', 0x8c: 'SHORT_BINUNICODE', 0x8d: 'BINUNICODE8', 0x8e: 'BINBYTES8', 0x8f: 'EMPTY_SET',
  0x90: 'ADDITEMS', 0x91: 'FROZENSET', 0x92: 'NEWOBJ_EX', 0x93: 'STACK_GLOBAL', 0x94: 'MEMOIZE', 0x95: 'FRAME',
  0x96: 'BYTEARRAY8', 0x97: 'NEXT_BUFFER', 0x98: 'READONLY_BUFFER',
};

const MARK = Symbol('mark');
type Slot = PyValue | typeof MARK;

const isTuple = (v: PyValue): v is readonly PyValue[] => Array.isArray(v);
const isInt = (v: PyValue): v is number => typeof v === 'number' && Number.isSafeInteger(v);

function describe(v: PyValue): string {
  if (v === null) return 'None';
  if (isTuple(v)) return `tuple of ${v.length}`;
  if (v instanceof PyGlobal) return `global ${v}`;
  if (v instanceof PyDict) return 'dict';
  if (typeof v === 'object') return v.kind;
  return `${typeof v} ${String(v).slice(0, 40)}`;
}

/**
 * Runs the allow-listed subset of the pickle machine over `bytes` and returns the top-level value. `where` names the
 * source in errors.
 */
export function unpickle(bytes: Uint8Array, where: string): PyValue {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const stack: Slot[] = [];
  const memo = new Map<number, PyValue>();
  const storages = new Map<string, PyStorage>();
  let pos = 0;
  let at = 0;
  const fail = (msg: string): never => {
    throw new Error(`${where}: pickle byte ${at}: ${msg}`);
  };
  const need = (n: number) => {
    if (pos + n > bytes.length) fail('unexpected end of the pickle (truncated?)');
  };
  const u8 = () => (need(1), bytes[pos++]);
  const u16 = () => (need(2), (pos += 2), dv.getUint16(pos - 2, true));
  const i32 = () => (need(4), (pos += 4), dv.getInt32(pos - 4, true));
  const u32 = () => (need(4), (pos += 4), dv.getUint32(pos - 4, true));
  const text = (n: number) => {
    need(n);
    pos += n;
    try {
      return utf8.decode(bytes.subarray(pos - n, pos));
    } catch {
      return fail('string is not valid UTF-8');
    }
  };
  const line = () => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) fail('unterminated GLOBAL line');
    const s = text(end - pos);
    pos++;
    return s;
  };
  const pop = (): PyValue => {
    const v = stack.pop();
    if (v === undefined) fail('stack underflow');
    if (v === MARK) fail('unexpected MARK on the stack');
    return v as PyValue;
  };
  const top = (): PyValue => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK) fail('stack underflow');
    return v as PyValue;
  };
  const popMark = (): PyValue[] => {
    const i = stack.lastIndexOf(MARK);
    if (i < 0) fail('no MARK on the stack');
    const items = stack.splice(i) as PyValue[];
    items.shift();
    return items;
  };
  const global = (module: string, name: string): PyGlobal => {
    const full = `${module}.${name}`;
    if (!ALLOWED_GLOBALS.has(full)) {
      fail(`refused global ${full}: only ${[...ALLOWED_GLOBALS].join(', ')} may appear in a state_dict checkpoint ` +
        '(nothing was executed)');
    }
    return new PyGlobal(module, name);
  };
  const setItem = (d: PyValue, k: PyValue, v: PyValue) => {
    if (!(d instanceof PyDict)) fail(`SETITEM(S) on a ${describe(d)}, expected a dict`);
    if (typeof k !== 'string' && !isInt(k)) fail(`dict key must be a string or an integer, got ${describe(k)}`);
    (d as PyDict).map.set(k as string | number, v);
  };
  const reduce = (fn: PyValue, args: PyValue): PyValue => {
    if (!(fn instanceof PyGlobal)) return fail(`REDUCE of a ${describe(fn)}, expected an allowed global`);
    if (!isTuple(args)) return fail(`REDUCE arguments must be a tuple, got ${describe(args)}`);
    const full = fn.toString();
    if (full === 'collections.OrderedDict') {
      if (args.length !== 0) fail(`OrderedDict(...) with ${args.length} arguments; only OrderedDict() is read`);
      return new PyDict();
    }
    if (full === 'torch._utils._rebuild_tensor_v2') return rebuildTensor(args);
    if (full === 'torch._utils._rebuild_parameter') {
      if (args.length !== 3) fail(`_rebuild_parameter takes (data, requires_grad, backward_hooks), got ${args.length} arguments`);
      const t = args[0];
      if (t === null || typeof t !== 'object' || !('kind' in t) || t.kind !== 'tensor') fail('_rebuild_parameter of a non-tensor');
      return t;
    }
    return fail(`${full} cannot be called`);
  };
  const rebuildTensor = (args: readonly PyValue[]): PyTensor => {
    // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
    if (args.length !== 6 && args.length !== 7) fail(`_rebuild_tensor_v2 takes 6 or 7 arguments, got ${args.length}`);
    const [storage, offset, size, stride, , hooks] = args;
    if (storage === null || typeof storage !== 'object' || !('kind' in storage) || storage.kind !== 'storage') {
      fail(`_rebuild_tensor_v2: first argument is a ${describe(storage)}, expected a storage`);
    }
    const ints = (v: PyValue, what: string): number[] => {
      if (!isTuple(v) || !v.every((x) => isInt(x) && x >= 0)) fail(`_rebuild_tensor_v2: ${what} must be a tuple of non-negative integers`);
      return [...(v as number[])];
    };
    if (!isInt(offset) || offset < 0) fail('_rebuild_tensor_v2: storage offset must be a non-negative integer');
    const shape = ints(size, 'size');
    const strides = ints(stride, 'stride');
    if (shape.length !== strides.length) fail(`_rebuild_tensor_v2: size has ${shape.length} dims, stride ${strides.length}`);
    if (!(hooks instanceof PyDict) || hooks.map.size !== 0) fail('_rebuild_tensor_v2: backward hooks must be an empty OrderedDict');
    return { kind: 'tensor', storage: storage as PyStorage, offset: offset as number, shape, stride: strides };
  };
  const persistent = (pid: PyValue): PyStorage => {
    if (!isTuple(pid) || pid.length !== 5 || pid[0] !== 'storage') {
      return fail(`persistent id ${describe(pid)} is not ('storage', type, key, location, numel)`);
    }
    const [, type, key, , numel] = pid;
    if (!(type instanceof PyGlobal) || type.module !== 'torch' || !(type.name in STORAGE_TYPES)) {
      return fail(`storage type ${describe(type)} is not one of ${Object.keys(STORAGE_TYPES).map((s) => `torch.${s}`).join(', ')}`);
    }
    if (typeof key !== 'string' || !/^[0-9A-Za-z_]+$/.test(key)) return fail(`storage key ${describe(key)} is not a plain name`);
    if (!isInt(numel) || numel < 0) return fail('storage numel must be a non-negative integer');
    const dtype = STORAGE_TYPES[type.name];
    const seen = storages.get(key);
    if (seen) {
      if (seen.dtype !== dtype || seen.numel !== numel) fail(`storage "${key}" is referenced as ${seen.dtype}[${seen.numel}] and ${dtype}[${numel}]`);
      return seen;
    }
    const s: PyStorage = { kind: 'storage', dtype, key, numel };
    storages.set(key, s);
    return s;
  };

  for (;;) {
    at = pos;
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) fail('unknown pickle protocol');
        break;
      case 0x95: // FRAME: a length prefix only
        need(8);
        pos += 8;
        break;
      case 0x2e: { // STOP
        const v = pop();
        if (stack.length) fail(`${stack.length} values left on the stack at STOP`);
        return v;
      }
      case 0x28: // MARK
        stack.push(MARK);
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new PyDict());
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push(Object.freeze([]));
        break;
      case 0x74: // TUPLE
        stack.push(Object.freeze(popMark()));
        break;
      case 0x85:
      case 0x86:
      case 0x87: { // TUPLE1..3
        const n = op - 0x84;
        const items: PyValue[] = [];
        for (let i = 0; i < n; i++) items.unshift(pop());
        stack.push(Object.freeze(items));
        break;
      }
      case 0x58: // BINUNICODE
        stack.push(text(u32()));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(text(u8()));
        break;
      case 0x4a: // BININT
        stack.push(i32());
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: { // LONG1: little-endian two's complement of n bytes
        const n = u8();
        need(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[pos + i]);
        if (n > 0 && bytes[pos + n - 1] & 0x80) v -= 1n << BigInt(8 * n);
        pos += n;
        stack.push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x47: // BINFLOAT (big-endian double)
        need(8);
        stack.push(dv.getFloat64(pos, false));
        pos += 8;
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
      case 0x6a: { // LONG_BINGET
        const k = op === 0x68 ? u8() : u32();
        if (!memo.has(k)) fail(`memo key ${k} was never stored`);
        stack.push(memo.get(k)!);
        break;
      }
      case 0x63: { // GLOBAL "module\nname\n"
        const module = line();
        stack.push(global(module, line()));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL needs two strings');
        stack.push(global(module as string, name as string));
        break;
      }
      case 0x52: { // REDUCE
        const args = pop();
        stack.push(reduce(pop(), args));
        break;
      }
      case 0x51: // BINPERSID
        stack.push(persistent(pop()));
        break;
      case 0x73: { // SETITEM
        const v = pop();
        const k = pop();
        setItem(top(), k, v);
        break;
      }
      case 0x75: { // SETITEMS
        const items = popMark();
        if (items.length % 2) fail('SETITEMS with an odd number of items');
        const d = top();
        for (let i = 0; i < items.length; i += 2) setItem(d, items[i], items[i + 1]);
        break;
      }
      case 0x62: { // BUILD: only a dict's instance attributes (state_dict._metadata), which carry no tensors
        const state = pop();
        if (!(top() instanceof PyDict) || !(state instanceof PyDict || state === null)) {
          fail(`BUILD of a ${describe(top())} with ${describe(state)}; only an OrderedDict's attributes are accepted`);
        }
        break;
      }
      default:
        fail(`refused opcode ${OPCODE_NAMES[op] ?? 'unknown'} (0x${op.toString(16).padStart(2, '0')}): not part of what ` +
          'torch.save(state_dict) writes (nothing was executed)');
    }
  }
}
