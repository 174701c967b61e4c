// Progress display for the CLI: a redrawn bar on a TTY, one line per change elsewhere (logs, CI).

export function bar(fraction: number, width = 30): string {
  const f = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
  const full = Math.round(f * width);
  return `[${'#'.repeat(full)}${'-'.repeat(width - full)}]`;
}

export function fmtSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

export function progressLine(status: string, progress: number, elapsedMs: number): string {
  return `${bar(progress / 100)} ${String(Math.round(progress)).padStart(3)}% ${status.padEnd(11)} ${fmtSeconds(elapsedMs)}`;
}

export class ProgressView {
  private last = '';
  private readonly t0 = performance.now();
  private readonly out: NodeJS.WriteStream;
  private readonly tty: boolean;
  constructor(out: NodeJS.WriteStream = process.stderr) {
    this.out = out;
    this.tty = !!out.isTTY;
  }

  update(status: string | undefined, progress: number | undefined): void {
    const s = status ?? 'in_progress';
    const p = progress ?? 0;
    const line = progressLine(s, p, performance.now() - this.t0);
    if (this.tty) this.out.write(`\r${line}`);
    else {
      const key = `${s} ${Math.floor(p / 10)}`; // a line per status change or 10 %
      if (key !== this.last) this.out.write(`${line}\n`);
      this.last = key;
    }
  }

  done(): void {
    if (this.tty) this.out.write('\n');
  }
}
