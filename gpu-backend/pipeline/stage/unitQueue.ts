// A stage's unit scheduling: the tensors of each (job, step, micro-batch) gather here until a unit has all its inputs
// (model inputs, or stream + skips), then that unit is queued with its feeds; next() picks later route positions first.
import type { FrameMeta } from '../../../shared/frame.ts';
import type { Tensor } from '../../../shared/tensor.ts';
import { TENSOR } from '../../model/chain.ts';
import type { Unit } from './units.ts';

/** the tensors of one micro-batch of one job on this stage, until all its units have run */
export interface MbState {
  key: string;
  jobId: string;
  origin: number;
  step: number;
  microBatch: number;
  tensors: Map<string, Tensor>;
  started: Set<string>;
  touched: number;
}

export interface Ready {
  unit: Unit;
  st: MbState;
  feeds: Record<string, Tensor>;
  readyAt: number;
}

export type MbKey = Pick<FrameMeta, 'jobId' | 'origin' | 'step' | 'microBatch'>;

export class UnitQueue {
  readonly units: readonly Unit[];
  /** input names per unit (model inputs, stream, skips) */
  private readonly needs = new Map<string, string[]>();
  /** every tensor name this stage accepts into a micro-batch state */
  private readonly accepted = new Set<string>();
  private readonly mbs = new Map<string, MbState>();
  private readonly ready: Ready[] = [];
  /** tensor bytes in mbs and ready, kept in step by every method that adds or removes one */
  private held = 0;

  constructor(units: readonly Unit[], inputNames: (unitKey: string) => readonly string[]) {
    this.units = units;
    for (const u of units) {
      const need = u.streamIn ? [u.streamIn, ...u.graph.skipsIn.map((i) => TENSOR.skip(i))] : [...inputNames(u.key)];
      this.needs.set(u.key, need);
      for (const n of need) this.accepted.add(n);
    }
  }

  get depth(): number {
    return this.ready.length;
  }

  /** bytes of the tensors waiting here (inputs of units not yet run) */
  get heldBytes(): number {
    return this.held;
  }

  /** whether any tensor of this job waits here */
  holds(jobId: string): boolean {
    for (const st of this.mbs.values()) if (st.jobId === jobId) return true;
    return this.ready.some((r) => r.st.jobId === jobId);
  }

  /** input names of a unit */
  inputsOf(unitKey: string): readonly string[] {
    return this.needs.get(unitKey)!;
  }

  /** whether some unit here takes a tensor of this name */
  accepts(name: string): boolean {
    return this.accepted.has(name);
  }

  acceptedNames(): string[] {
    return [...this.accepted];
  }

  /** add a tensor to its micro-batch and queue every unit whose inputs are now complete */
  put(h: MbKey, name: string, t: Tensor): void {
    const key = `${h.jobId}:${h.step}:${h.microBatch}`;
    let st = this.mbs.get(key);
    if (!st) {
      st = { key, jobId: h.jobId, origin: h.origin, step: h.step, microBatch: h.microBatch, tensors: new Map(), started: new Set(), touched: 0 };
      this.mbs.set(key, st);
    }
    if (st.tensors.has(name)) throw new Error(`duplicate ${name}`);
    st.tensors.set(name, t);
    this.held += t.data.byteLength;
    st.touched = Date.now();
    for (const u of this.units) {
      if (st.started.has(u.key)) continue;
      const need = this.needs.get(u.key)!;
      if (!need.every((n) => st.tensors.has(n))) continue;
      st.started.add(u.key);
      const feeds: Record<string, Tensor> = {};
      for (const n of need) {
        // stream and skip names become the ONNX input names; model inputs keep theirs
        const onnx = n === u.streamIn ? TENSOR.hIn : n;
        feeds[onnx] = st.tensors.get(n)!;
        st.tensors.delete(n);
      }
      this.ready.push({ unit: u, st, feeds, readyAt: performance.now() });
    }
    if (st.started.size === this.units.length) this.mbs.delete(key);
  }

  /** the next unit to run: later route positions first (work closest to returning eps keeps every job's loop moving); FIFO among equals */
  next(): Ready | undefined {
    if (!this.ready.length) return undefined;
    let pick = 0;
    for (let i = 1; i < this.ready.length; i++) if (this.ready[i].unit.rank > this.ready[pick].unit.rank) pick = i;
    const r = this.ready.splice(pick, 1)[0];
    this.held -= feedBytes(r);
    return r;
  }

  /** jobs (with their origin) that have inputs waiting for a unit */
  partialJobs(): Map<string, number> {
    const jobs = new Map<string, number>();
    for (const st of this.mbs.values()) jobs.set(st.jobId, st.origin);
    return jobs;
  }

  dropJob(jobId: string): void {
    for (const [k, st] of this.mbs) if (st.jobId === jobId) this.dropMb(k, st);
    for (let i = this.ready.length - 1; i >= 0; i--) {
      if (this.ready[i].st.jobId !== jobId) continue;
      this.held -= feedBytes(this.ready[i]);
      this.ready.splice(i, 1);
    }
  }

  /** forget micro-batches not touched since `before` (ms epoch) */
  sweep(before: number): void {
    for (const [k, st] of this.mbs) if (st.touched < before) this.dropMb(k, st);
  }

  private dropMb(key: string, st: MbState): void {
    for (const t of st.tensors.values()) this.held -= t.data.byteLength;
    this.mbs.delete(key);
  }
}

const feedBytes = (r: Ready): number => Object.values(r.feeds).reduce((a, t) => a + t.data.byteLength, 0);
