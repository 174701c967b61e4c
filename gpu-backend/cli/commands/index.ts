// The one list of `uvit` subcommands. To add one: write commands/<name>.ts (or a module of your own) exporting a
// Command (../command.ts) and add an entry here: eager(cmd) for light modules, lazy(...) for ones that pull in a lot
// (so `uvit --help` and the other commands stay fast). `uvit --help` and `uvit <name> --help` pick it up.
import { eager, lazy, type CommandEntry } from '../command.ts';
import { convertCommand } from './convert.ts';
import { decodeCommand } from './decode.ts';
import { exportClipCommand } from './exportClip.ts';
import { exportCommand } from './export.ts';
import { forwardCommand } from './forward.ts';
import { initWeightsCommand } from './initWeights.ts';
import { sampleCommand } from './sample.ts';

export const COMMANDS: CommandEntry[] = [
  eager(forwardCommand),
  eager(sampleCommand),
  eager(initWeightsCommand),
  eager(exportCommand),
  eager(convertCommand),
  eager(decodeCommand),
  eager(exportClipCommand),
  lazy('stage', 'run one pipeline stage process: serve its shard of the network over TCP', 'stageCommand', () => import('./stage.ts')),
  lazy('serve', 'run a backend group driver: pull jobs from the edge, generate on the stage pipeline, upload MP4s', 'serveCommand',
    () => import('./serve.ts')),
];
