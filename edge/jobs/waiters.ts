// Lease long-poll waiters, per model: a lease() with nothing to claim parks here until a job of its model is
// queued (wake) or its time is up. Each waiter removes itself; a model's set goes once its last waiter leaves.
export class Waiters {
  private byModel = new Map<string, Set<() => void>>();

  /** Resolves after `ms`, or as soon as wake(model) is called. */
  wait(model: string, ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      let set = this.byModel.get(model);
      if (!set) this.byModel.set(model, (set = new Set()));
      const own = set;
      const done = () => {
        clearTimeout(timer);
        own.delete(done);
        if (own.size === 0 && this.byModel.get(model) === own) this.byModel.delete(model);
        resolve();
      };
      const timer = setTimeout(done, ms);
      own.add(done);
    });
  }

  wake(model: string): void {
    for (const w of this.byModel.get(model) ?? []) w();
  }

  /** Models with a parked waiter, and parked waiters over all models (for leak checks). */
  counts(): { models: number; waiters: number } {
    let waiters = 0;
    for (const set of this.byModel.values()) waiters += set.size;
    return { models: this.byModel.size, waiters };
  }
}
