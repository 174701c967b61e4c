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
  /** attacks on a boundary (tests/chaos/security.fast.test.ts): tried, and held (refused as they must be) */
  attacks_tried: number;
  attacks_held: number;
};

export const ZERO: Counts = {
  faults_injected: 0, faults_survived: 0, bad_inputs_tried: 0, bad_inputs_handled: 0,
  requests_accepted: 0, requests_rejected: 0, requests_lost: 0, attacks_tried: 0, attacks_held: 0,
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

  private readonly heldByKind = new Map<string, number>();

  /**
   * An attack: counted tried now, held when `check` (which asserts the refusal) resolves. `what` is "kind: detail";
   * the table's notes list how many of each kind held.
   */
  async attack<T>(what: string, check: () => Promise<T> | T): Promise<T> {
    this.add('attacks_tried');
    const v = await check();
    this.add('attacks_held');
    const kind = what.split(':')[0];
    this.heldByKind.set(kind, (this.heldByKind.get(kind) ?? 0) + 1);
    return v;
  }

  write(): void {
    if (this.heldByKind.size) this.note(`attacks held: ${[...this.heldByKind].map(([k, n]) => `${k} ×${n}`).join(', ')}`);
    const dir = process.env.CHAOS_STATS_DIR;
    if (!dir) return;
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${this.name}.json`), JSON.stringify({ name: this.name, counts: this.counts, notes: this.notes }, null, 2));
  }
}
