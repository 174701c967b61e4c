// Frames (uint8 RGB, packed HWC) → H.264 MP4 through an ffmpeg child process, and on request the clip's content
// variants (variants.ts) from the same raw frames in the same process; ffprobe for verification.
// Binary lookup order: $UVIT_FFMPEG / $UVIT_FFPROBE, then a system binary on $PATH, then the static binaries of
// @ffmpeg-installer/ffmpeg and @ffprobe-installer/ffprobe (npm devDependencies with libx264).
import { spawnSync } from 'node:child_process';
import { accessSync, closeSync, constants, existsSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, join } from 'node:path';
import { type Launch, launchHere } from './launcher.ts';
import { type Variant, variantOutputs } from './variants.ts';

const require = createRequire(import.meta.url);

function isExecutable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, name);
    if (isExecutable(p)) return p;
  }
  return undefined;
}

function fromInstaller(pkg: string): string | undefined {
  try {
    const p = (require(pkg) as { path: string }).path;
    return isExecutable(p) ? p : undefined;
  } catch {
    return undefined;
  }
}

function resolveTool(tool: 'ffmpeg' | 'ffprobe', envName: string, pkg: string): string {
  const env = process.env[envName];
  if (env) {
    if (!isExecutable(env)) throw new Error(`${envName}=${env} is not an executable file`);
    return env;
  }
  const found = onPath(tool) ?? fromInstaller(pkg);
  if (!found) {
    throw new Error(
      `${tool} not found: set ${envName}, install ${tool} on PATH (e.g. apt-get install ffmpeg), ` +
        `or run npm install so that ${pkg} provides its static binary`,
    );
  }
  return found;
}

export function ffmpegPath(): string {
  return resolveTool('ffmpeg', 'UVIT_FFMPEG', '@ffmpeg-installer/ffmpeg');
}

export function ffprobePath(): string {
  return resolveTool('ffprobe', 'UVIT_FFPROBE', '@ffprobe-installer/ffprobe');
}

export interface Mp4Options {
  width: number;
  height: number;
  /** frames per second, an integer (the output is constant frame rate, exactly this) */
  fps: number;
  /** output file path (faststart needs a seekable file, not a pipe) */
  out: string;
  /** x264 constant rate factor, default 20 */
  crf?: number;
  /** x264 preset, default 'veryfast' */
  preset?: string;
  /** encoder threads; fixed (default 2) so the same frames give the same bytes on any machine */
  threads?: number;
  /** also make the content variants (variants.ts) of a clip of exactly `frames` frames, at `${base}.<variant>.<ext>` */
  variants?: { base: string; frames: number };
  /** how ffmpeg is started (default: a child of this process; the driver uses its Launcher, launcher.ts) */
  launch?: Launch;
}

export interface Mp4Result {
  path: string;
  frames: number;
  bytes: number;
  ms: number;
  /** the variants asked for in the options, empty if none */
  variants: Variant[];
}

export function checkMp4Options(o: Mp4Options): void {
  for (const k of ['width', 'height', 'fps'] as const) {
    if (!Number.isInteger(o[k]) || o[k] <= 0) throw new Error(`mp4: ${k} must be a positive integer, got ${o[k]}`);
  }
  // yuv420p subsamples chroma 2×2, so libx264 needs even sides.
  if (o.width % 2 || o.height % 2) throw new Error(`mp4: yuv420p needs even width and height, got ${o.width}x${o.height}`);
}

/**
 * Encode `frames` (each width*height*3 bytes, RGB24, row-major) as H.264 yuv420p MP4 with +faststart, and the
 * content variants when `opts.variants` asks for them (their frame picks need the clip's length before it streams).
 * A frame of the wrong size rejects before anything reaches ffmpeg's stdin for that frame. On failure no variant file
 * is left behind: the caller learns their paths only from the result.
 */
export async function encodeMp4(
  frames: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
  opts: Mp4Options,
): Promise<Mp4Result> {
  checkMp4Options(opts);
  const variants = opts.variants ? variantOutputs(opts.variants.frames, opts.variants.base) : [];
  const t0 = performance.now();
  const frameBytes = opts.width * opts.height * 3;
  // bit-exact muxing and no metadata: the same frames give the same file bytes
  const bitexact = ['-map_metadata', '-1', '-fflags', '+bitexact', '-flags:v', '+bitexact'];
  const mp4 = [
    '-an', '-c:v', 'libx264', '-preset', opts.preset ?? 'veryfast', '-crf', String(opts.crf ?? 20),
    '-pix_fmt', 'yuv420p', '-r', String(opts.fps), '-threads', String(opts.threads ?? 2),
    ...bitexact, '-movflags', '+faststart', '-f', 'mp4', opts.out,
  ];
  const outputs = variants.length === 0 ? mp4 : [
    // One copy of the raw frames per output. A complex graph's converters default to bilinear, a simple one's to
    // bicubic: sws_flags keeps the MP4 byte-identical to one encoded without variants.
    '-filter_complex', [
      `sws_flags=bicubic;[0:v]split=${variants.length + 1}[mp4]${variants.map((_, i) => `[in${i}]`).join('')}`,
      ...variants.map((v, i) => `[in${i}]${v.filter}[out${i}]`),
    ].join(';'),
    '-map', '[mp4]', ...mp4,
    ...variants.flatMap((v, i) => ['-map', `[out${i}]`, ...v.codec, ...bitexact, v.file]),
  ];
  const args = [
    '-hide_banner', '-loglevel', 'error', '-nostdin', '-y',
    '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${opts.width}x${opts.height}`, '-framerate', String(opts.fps),
    '-i', 'pipe:0', ...outputs,
  ];
  const child = await (opts.launch ?? launchHere)(ffmpegPath(), args).catch((e: Error) => {
    throw new Error(`mp4: ${e.message}`);
  });
  const exited = child.exited.catch((e: Error) => {
    throw new Error(`mp4: ${e.message}`);
  });
  exited.catch(() => {});
  // Swallow EPIPE here; the exit code and stderr carry the real error.
  child.stdin.on('error', () => {});

  let n = 0;
  try {
    for await (const f of frames) {
      if (!(f instanceof Uint8Array) || f.length !== frameBytes) {
        throw new Error(
          `mp4: frame ${n} has ${f?.length ?? 'no'} bytes, expected ${frameBytes} (${opts.width}x${opts.height} RGB24)`,
        );
      }
      n++;
      if (!child.stdin.write(f)) {
        // wait for room, or for ffmpeg to stop reading (it exited, or its pipe broke)
        await Promise.race([
          new Promise<void>((resolve) => {
            const done = () => {
              child.stdin.off('drain', done);
              child.stdin.off('close', done);
              resolve();
            };
            child.stdin.once('drain', done);
            child.stdin.once('close', done);
          }),
          exited.then(() => {}, () => {}),
        ]);
      }
      if (child.done || child.stdin.destroyed) break;
    }
    if (n === 0) throw new Error('mp4: no frames to encode');
    // (an ffmpeg that stopped early has the better error: its stderr, below)
    if (opts.variants && n !== opts.variants.frames && !child.done && !child.stdin.destroyed) {
      throw new Error(`mp4: the variants were asked for a clip of ${opts.variants.frames} frames, but ${n} came`);
    }
    child.stdin.end();
    const code = await exited;
    if (code !== 0) throw new Error(`mp4: ffmpeg exited with ${code}: ${child.stderr().trim() || '(no stderr)'}`);
    for (const f of [opts.out, ...variants.map((v) => v.file)]) {
      if (!existsSync(f)) throw new Error(`mp4: ffmpeg succeeded but ${f} is missing`);
    }
  } catch (e) {
    child.kill();
    child.stdin.destroy();
    await exited.catch(() => {});
    for (const v of variants) rmSync(v.file, { force: true });
    throw e;
  }
  return {
    path: opts.out,
    frames: n,
    bytes: statSync(opts.out).size,
    ms: performance.now() - t0,
    variants: variants.map(({ name, content_type, file }) => ({ name, content_type, file })),
  };
}

/** Split one packed buffer [frames, H, W, 3] into frame views (no copy); its length must be a whole number of frames. */
export function splitFrames(buf: Uint8Array, width: number, height: number): Uint8Array[] {
  const fb = width * height * 3;
  if (buf.length === 0 || buf.length % fb !== 0) {
    throw new Error(`mp4: buffer of ${buf.length} bytes is not a whole number of ${width}x${height} RGB24 frames (${fb} bytes each)`);
  }
  const out: Uint8Array[] = [];
  for (let o = 0; o < buf.length; o += fb) out.push(buf.subarray(o, o + fb));
  return out;
}

export interface ProbeResult {
  codec: string;
  pixFmt: string;
  width: number;
  height: number;
  /** r_frame_rate as a number */
  fps: number;
  frames: number;
  /** container duration, seconds */
  duration: number;
  /** true when the moov atom comes before mdat (faststart) */
  faststart: boolean;
}

function parseRate(s: string): number {
  const [a, b] = s.split('/').map(Number);
  return b ? a / b : a;
}

/** ffprobe the first video stream of a file. */
export function probeMp4(path: string): ProbeResult {
  const r = spawnSync(
    ffprobePath(),
    ['-v', 'error', '-count_frames', '-select_streams', 'v:0', '-show_entries',
      'stream=codec_name,pix_fmt,width,height,r_frame_rate,nb_read_frames:format=duration', '-of', 'json', path],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`ffprobe ${path} failed (${r.status}): ${r.stderr || r.error?.message}`);
  const j = JSON.parse(r.stdout) as {
    streams: { codec_name: string; pix_fmt: string; width: number; height: number; r_frame_rate: string; nb_read_frames: string }[];
    format: { duration: string };
  };
  const s = j.streams[0];
  if (!s) throw new Error(`ffprobe ${path}: no video stream`);
  return {
    codec: s.codec_name,
    pixFmt: s.pix_fmt,
    width: s.width,
    height: s.height,
    fps: parseRate(s.r_frame_rate),
    frames: Number(s.nb_read_frames),
    duration: Number(j.format.duration),
    faststart: moovBeforeMdat(path),
  };
}

/** Walk the top-level MP4 boxes: faststart puts `moov` before `mdat`. */
export function moovBeforeMdat(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const size = statSync(path).size;
    const hdr = Buffer.alloc(16);
    let off = 0;
    while (off + 8 <= size) {
      readSync(fd, hdr, 0, 16, off);
      let len = hdr.readUInt32BE(0);
      const type = hdr.toString('latin1', 4, 8);
      if (type === 'moov') return true;
      if (type === 'mdat') return false;
      if (len === 1) len = Number(hdr.readBigUInt64BE(8));
      else if (len === 0) break;
      off += len;
    }
    return false;
  } finally {
    closeSync(fd);
  }
}
