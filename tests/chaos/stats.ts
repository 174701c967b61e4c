// Counters for the `npm run test:chaos` table. Each test file tallies what it did; when CHAOS_STATS_DIR is set (by
// scripts/chaos.ts) the counts are written there as <name>.json when the file ends and the script sums them.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export type Counts = {
  faults_injected: number;
  faults_survived: number;
  bad_inputs_tried: number;
  bad_inputs_handled: number;
  requests_accepted: number;
  requests_rejected: number;
  requests_lost: number;
};

export const ZERO: Counts = {
  faults_injected: 0, faults_survived: 0, bad_inputs_tried: 0, bad_inputs_handled: 0,
  requests_accepted: 0, requests_rejected: 0, requests_lost: 0,
};

export class Tally {
  readonly name: string;
  readonly counts: Counts = { ...ZERO };
  readonly notes: string[] = [];

  constructor(name: string) {
    this.name = name;
  }

  add(k: keyof Counts, n = 1): void {
    this.counts[k] += n;
  }

  note(s: string): void {
    this.notes.push(s);
  }

  /** A fault: counted injected now, survived when `check` resolves. */
  async fault<T>(what: string, check: () => Promise<T>): Promise<T> {
    this.add('faults_injected');
    const v = await check();
    this.add('faults_survived');
    this.note(`fault survived: ${what}`);
    return v;
  }

  write(): void {
    const dir = process.env.CHAOS_STATS_DIR;
    if (!dir) return;
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${this.name}.json`), JSON.stringify({ name: this.name, counts: this.counts, notes: this.notes }, null, 2));
  }
}
