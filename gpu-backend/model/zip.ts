// Read-only access to the STORED entries of a zip archive (what torch.save writes: no compression, data 64-byte
// aligned through local-header padding), zip64 included. Only the central directory is parsed at open; an entry's
// bytes are read on demand with positional reads, so a multi-GB checkpoint is never held in memory at once.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

export interface ZipEntry {
  name: string;
  /** absolute offset of the entry's first data byte */
  dataOffset: number;
  size: number;
}

const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_LOCAL = 0x04034b50;
const CHUNK = 1 << 30;

export class ZipFile {
  readonly path: string;
  readonly size: number;
  readonly entries: Map<string, ZipEntry>;
  #fd: number | null;

  private constructor(path: string, fd: number, size: number, entries: Map<string, ZipEntry>) {
    this.path = path;
    this.#fd = fd;
    this.size = size;
    this.entries = entries;
  }

  static open(path: string): ZipFile {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (e) {
      throw new Error(`cannot open ${path}: ${(e as Error).message}`);
    }
    try {
      const size = fstatSync(fd).size;
      return new ZipFile(path, fd, size, readDirectory(fd, size, `zip archive ${path}`));
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  /** bytes [start, start+length) of an entry */
  read(name: string, start = 0, length?: number): Uint8Array {
    const e = this.entries.get(name);
    if (!e) throw new Error(`zip archive ${this.path}: no entry "${name}"`);
    const len = length ?? e.size - start;
    if (start < 0 || len < 0 || start + len > e.size) {
      throw new Error(`zip archive ${this.path}: bytes [${start}, ${start + len}) lie outside entry "${name}" (${e.size} bytes)`);
    }
    if (this.#fd === null) throw new Error(`zip archive ${this.path} is closed`);
    const buf = new Uint8Array(len);
    readAt(this.#fd, buf, e.dataOffset + start, `zip archive ${this.path}: entry "${name}"`);
    return buf;
  }

  close(): void {
    if (this.#fd !== null) closeSync(this.#fd);
    this.#fd = null;
  }
}

function readAt(fd: number, buf: Uint8Array, position: number, what: string): void {
  for (let done = 0; done < buf.length;) {
    const got = readSync(fd, buf, done, Math.min(CHUNK, buf.length - done), position + done);
    if (got === 0) throw new Error(`${what}: unexpected end of file at byte ${position + done} (file truncated?)`);
    done += got;
  }
}

function view(fd: number, position: number, length: number, what: string): DataView {
  const b = new Uint8Array(length);
  readAt(fd, b, position, what);
  return new DataView(b.buffer);
}

const u64 = (v: DataView, o: number, what: string): number => {
  const n = v.getBigUint64(o, true);
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`${what}: 64-bit field ${n} is out of range`);
  return Number(n);
};

function readDirectory(fd: number, size: number, w: string): Map<string, ZipEntry> {
  // the end-of-central-directory record sits in the last 22 + 65535 (comment) bytes
  const tailLen = Math.min(size, 22 + 0xffff);
  if (size < 22) throw new Error(`${w}: ${size} bytes is too short for a zip archive (not a torch.save file?)`);
  const tail = view(fd, size - tailLen, tailLen, w);
  let eocd = -1;
  for (let i = tailLen - 22; i >= 0; i--) {
    if (tail.getUint32(i, true) === SIG_EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error(`${w}: no end-of-central-directory record (not a zip archive, or truncated)`);
  let count = tail.getUint16(eocd + 10, true);
  let cdSize = tail.getUint32(eocd + 12, true);
  let cdOffset = tail.getUint32(eocd + 16, true);
  const eocdAbs = size - tailLen + eocd;
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    if (eocdAbs < 20) throw new Error(`${w}: zip64 fields without a zip64 locator`);
    const loc = view(fd, eocdAbs - 20, 20, w);
    if (loc.getUint32(0, true) !== SIG_ZIP64_LOCATOR) throw new Error(`${w}: zip64 fields without a zip64 locator`);
    const z64At = u64(loc, 8, w);
    if (z64At + 56 > size) throw new Error(`${w}: zip64 end record at ${z64At} lies past the end of the file`);
    const z = view(fd, z64At, 56, w);
    if (z.getUint32(0, true) !== SIG_ZIP64_EOCD) throw new Error(`${w}: bad zip64 end-of-central-directory signature`);
    count = u64(z, 32, w);
    cdSize = u64(z, 40, w);
    cdOffset = u64(z, 48, w);
  }
  if (cdOffset + cdSize > size) throw new Error(`${w}: central directory [${cdOffset}, ${cdOffset + cdSize}) runs past the end of the file (${size} bytes; truncated?)`);
  const cd = view(fd, cdOffset, cdSize, w);
  const entries = new Map<string, ZipEntry>();
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  let p = 0;
  for (let k = 0; k < count; k++) {
    if (p + 46 > cdSize || cd.getUint32(p, true) !== SIG_CENTRAL) throw new Error(`${w}: central directory entry ${k} is malformed`);
    const flags = cd.getUint16(p + 8, true);
    const method = cd.getUint16(p + 10, true);
    let csize = cd.getUint32(p + 20, true);
    let usize = cd.getUint32(p + 24, true);
    const nameLen = cd.getUint16(p + 28, true);
    const extraLen = cd.getUint16(p + 30, true);
    const commentLen = cd.getUint16(p + 32, true);
    let lho = cd.getUint32(p + 42, true);
    if (p + 46 + nameLen + extraLen + commentLen > cdSize) throw new Error(`${w}: central directory entry ${k} runs past the directory`);
    let name: string;
    try {
      name = utf8.decode(new Uint8Array(cd.buffer, p + 46, nameLen));
    } catch {
      throw new Error(`${w}: entry ${k} has a name that is not UTF-8`);
    }
    // zip64 extended information: only the fields whose 32-bit slot is saturated, in this order
    for (let e = p + 46 + nameLen; e + 4 <= p + 46 + nameLen + extraLen;) {
      const id = cd.getUint16(e, true);
      const len = cd.getUint16(e + 2, true);
      if (id === 0x0001) {
        let q = e + 4;
        const take = () => {
          if (q + 8 > e + 4 + len) throw new Error(`${w}: entry "${name}": zip64 extra field is too short`);
          const v = u64(cd, q, w);
          q += 8;
          return v;
        };
        if (usize === 0xffffffff) usize = take();
        if (csize === 0xffffffff) csize = take();
        if (lho === 0xffffffff) lho = take();
      }
      e += 4 + len;
    }
    const what = `${w}: entry "${name}"`;
    if (flags & 1) throw new Error(`${what} is encrypted`);
    if (method !== 0) throw new Error(`${what} uses compression method ${method}; only stored entries (method 0, what torch.save writes) are read`);
    if (csize !== usize) throw new Error(`${what}: stored entry with compressed size ${csize} != size ${usize}`);
    if (lho + 30 > size) throw new Error(`${what}: local header at ${lho} lies past the end of the file`);
    const local = view(fd, lho, 30, what);
    if (local.getUint32(0, true) !== SIG_LOCAL) throw new Error(`${what}: bad local header signature at ${lho}`);
    const dataOffset = lho + 30 + local.getUint16(26, true) + local.getUint16(28, true);
    if (dataOffset + usize > size) throw new Error(`${what}: data [${dataOffset}, ${dataOffset + usize}) runs past the end of the file (${size} bytes; truncated?)`);
    if (entries.has(name)) throw new Error(`${w}: duplicate entry "${name}"`);
    entries.set(name, { name, dataOffset, size: usize });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}
