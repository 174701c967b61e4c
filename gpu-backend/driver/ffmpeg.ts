// Frames (uint8 RGB, packed HWC) → H.264 MP4 through an ffmpeg child process; ffprobe for verification.
// Binary lookup order: $UVIT_FFMPEG / $UVIT_FFPROBE, then a system binary on $PATH, then the static binaries of
// @ffmpeg-installer/ffmpeg and @ffprobe-installer/ffprobe (npm devDependencies with libx264).
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, closeSync, constants, existsSync, openSync, readSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, join } from 'node:path';

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
}

export interface Mp4Result {
  path: string;
  frames: number;
  bytes: number;
  ms: number;
}

export function checkMp4Options(o: Mp4Options): void {
  for (const k of ['width', 'height', 'fps'] as const) {
    if (!Number.isInteger(o[k]) || o[k] <= 0) throw new Error(`mp4: ${k} must be a positive integer, got ${o[k]}`);
  }
  // yuv420p subsamples chroma 2×2, so libx264 needs even sides.
  if (o.width % 2 || o.height % 2) throw new Error(`mp4: yuv420p needs even width and height, got ${o.width}x${o.height}`);
}

/**
 * Encode `frames` (each width*height*3 bytes, RGB24, row-major) as H.264 yuv420p MP4 with +faststart.
 * A frame of the wrong size rejects before anything reaches ffmpeg's stdin for that frame.
 */
export async function encodeMp4(
  frames: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
  opts: Mp4Options,
): Promise<Mp4Result> {
  checkMp4Options(opts);
  const t0 = performance.now();
  const frameBytes = opts.width * opts.height * 3;
  const args = [
    '-hide_banner', '-loglevel', 'error', '-nostdin', '-y',
    '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${opts.width}x${opts.height}`, '-framerate', String(opts.fps),
    '-i', 'pipe:0',
    '-an', '-c:v', 'libx264', '-preset', opts.preset ?? 'veryfast', '-crf', String(opts.crf ?? 20),
    '-pix_fmt', 'yuv420p', '-r', String(opts.fps), '-threads', String(opts.threads ?? 2),
    // bit-exact muxing and no metadata: the same frames give the same file bytes
    '-map_metadata', '-1', '-fflags', '+bitexact', '-flags:v', '+bitexact',
    '-movflags', '+faststart', '-f', 'mp4', opts.out,
  ];
  const child = spawn(ffmpegPath(), args, { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => {
    if (stderr.length < 8000) stderr += d;
  });
  const exited = new Promise<number>((resolve, reject) => {
    child.on('error', (e) => reject(new Error(`mp4: could not start ffmpeg: ${e.message}`)));
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
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
        await new Promise<void>((resolve) => {
          const done = () => {
            child.stdin.off('drain', done);
            child.off('close', done);
            resolve();
          };
          child.stdin.once('drain', done);
          child.once('close', done);
        });
      }
      if (child.exitCode !== null) break;
    }
    if (n === 0) throw new Error('mp4: no frames to encode');
  } catch (e) {
    child.kill('SIGKILL');
    await exited.catch(() => {});
    throw e;
  }
  child.stdin.end();
  const code = await exited;
  if (code !== 0) throw new Error(`mp4: ffmpeg exited with ${code}: ${stderr.trim() || '(no stderr)'}`);
  if (!existsSync(opts.out)) throw new Error(`mp4: ffmpeg succeeded but ${opts.out} is missing`);
  return { path: opts.out, frames: n, bytes: statSync(opts.out).size, ms: performance.now() - t0 };
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
