// Driver-side micro-batch window: at most `limit` micro-batches in flight across all jobs, granted FIFO so a job
// submitted later still gets its turn after each earlier micro-batch (no job waits for another job's whole loop).
// Each micro-batch is a separate request with its own tensors: jobs are never mixed in one tensor (determinism).

export class MicroBatchWindow {
  private readonly limit: number;
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(limit: number) {
    if (!(Number.isInteger(limit) && limit >= 1)) throw new Error(`micro-batch window must be an integer >= 1, got ${limit}`);
    this.limit = limit;
  }

  get inFlight(): number {
    return this.active;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** resolves with a release function once a slot is free */
  async acquire(): Promise<() => void> {
    if (this.active < this.limit) this.active++;
    else await new Promise<void>((r) => this.waiting.push(r)); // the slot is handed over by release()
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    };
  }

  /** run fn inside a slot */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const release = await this.acquire();
    try {
      return await fn();
    } finally {
      release();
    }
  }
}
