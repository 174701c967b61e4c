// The --report JSON of `uvit forward` / `uvit sample`.
import { writeFileSync } from 'node:fs';
import type { NetworkRunner, StageStats, TrafficStats } from './runner.ts';

export interface RunReport {
  command: string;
  partition: string;
  numStages: number;
  ep: string;
  threads: number | null;
  /** network forwards run (sample: steps, x2 with micro-batched CFG) */
  forwards: number;
  stages: StageStats[];
  /** bytes that crossed a stage boundary, summed over all forwards */
  skipBytes: number;
  activationBytes: number;
  traffic: TrafficStats;
  /**
   * 'in-process': every stage ran in this process; per-stage peakRssBytes is the RSS growth while it loaded (ONNX
   * Runtime's start-up is absorbed by a warm-up session first). 'per-process': each stage's own process peak RSS.
   */
  memoryScope: 'in-process' | 'per-process';
  process: { peakRssBytes: number };
  wallMs: number;
  [extra: string]: unknown;
}

export function buildReport(
  command: string,
  runner: NetworkRunner,
  wallMs: number,
  o: { ep: string; threads?: number },
  extra: Record<string, unknown> = {},
): RunReport {
  return {
    command,
    partition: runner.plan.partition,
    numStages: runner.plan.numStages,
    ep: o.ep,
    threads: o.threads ?? null,
    forwards: runner.forwards,
    stages: runner.stages.map((s) => ({ ...s, computeMs: round(s.computeMs), loadMs: round(s.loadMs) })),
    skipBytes: runner.traffic.skipBytes,
    activationBytes: runner.traffic.activationBytes,
    traffic: { ...runner.traffic },
    memoryScope: runner.memoryScope,
    process: { peakRssBytes: process.resourceUsage().maxRSS * 1024 },
    wallMs: round(wallMs),
    ...extra,
  };
}

export function writeReport(path: string, report: RunReport): void {
  writeFileSync(path, JSON.stringify(report, null, 2) + '\n');
}

const round = (v: number) => Math.round(v * 1000) / 1000;
