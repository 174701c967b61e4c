// `uvit stage`: one pipeline stage process. The process itself (flags, start-up, shutdown) lives with the stage
// server in pipeline/stage/process.ts, so spawned stages start without the CLI; this is its registry entry.
import { STAGE_OPTIONS, STAGE_USAGE, serveStage } from '../../pipeline/stage/process.ts';
import type { Command } from '../command.ts';

export const stageCommand: Command = {
  name: 'stage',
  summary: 'run one pipeline stage process: serve its shard of the network over TCP',
  usage: STAGE_USAGE,
  options: STAGE_OPTIONS as unknown as Command['options'],
  notes:
    'Prints "uvit-stage ready stage=K address=HOST:PORT" on stdout when it accepts connections. The driver connects to\n' +
    'every stage; stages connect to each other (addresses from --peers or the driver hello). Frames: shared/frame.ts.\n' +
    'Every connection must prove the group secret first (HMAC challenge-response): set UVIT_GROUP_SECRET_FILE to a\n' +
    'file readable by its owner only (chmod 600), or UVIT_GROUP_SECRET; the driver and every stage need the same one.',
  run: (v) => serveStage(v),
};
