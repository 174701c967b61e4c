// Structured logs of the backend processes: one JSON object per line on stderr (pino), with the ids of the work in
// progress. The ids travel with the async context: code that runs for a lease (`withLogIds({ job, lease }, …)`)
// logs them on every line, down to the driver and the pipeline client, without passing a logger around.
import { AsyncLocalStorage } from 'node:async_hooks';
import { pino } from 'pino';

export type LogIds = { job?: string; lease?: string; attempt?: number; stage?: number; group?: string };

const current = new AsyncLocalStorage<LogIds>();

/** Runs `fn` with `ids` added to every line logged inside it (nested calls add to the outer ids). */
export function withLogIds<T>(ids: LogIds, fn: () => T): T {
  return current.run({ ...current.getStore(), ...ids }, fn);
}

/**
 * A `(line) => void` logger (what the commands take) writing JSON lines: {level, time, pid, name, …bound ids,
 * …context ids, msg}. `dest` is a file descriptor (2 = stderr) or a stream (tests).
 */
export function jsonLogger(name: string, bound: LogIds = {}, dest: number | NodeJS.WritableStream = 2): (line: string) => void {
  const stream = typeof dest === 'number' ? pino.destination({ fd: dest, sync: true }) : dest;
  const logger = pino({ name, base: { pid: process.pid, ...bound }, mixin: () => current.getStore() ?? {} }, stream);
  return (line) => logger.info(line);
}
