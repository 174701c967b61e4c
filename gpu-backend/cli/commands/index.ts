// The one list of `uvit` subcommands. To add one: write commands/<name>.ts exporting a Command (../command.ts)
// and add it here; `uvit --help` and `uvit <name> --help` pick it up.
import type { Command } from '../command.ts';
import { exportCommand } from './export.ts';
import { forwardCommand } from './forward.ts';
import { initWeightsCommand } from './initWeights.ts';
import { sampleCommand } from './sample.ts';

export const COMMANDS: Command[] = [forwardCommand, sampleCommand, initWeightsCommand, exportCommand];
