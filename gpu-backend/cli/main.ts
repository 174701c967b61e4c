// `uvit` command dispatch (entry: uvit.ts). Commands are registered in commands/index.ts.
// Exit codes: 0 ok, 1 runtime error (bad file, shape mismatch, ...), 2 usage error (unknown/missing flag, bad value).
import { commandHelp, parseCommandArgs, UsageError, type Command, type CommandContext, type CommandEntry } from './command.ts';
import { COMMANDS } from './commands/index.ts';

function mainHelp(commands: CommandEntry[]): string {
  const w = Math.max(...commands.map((c) => c.name.length)) + 4;
  return [
    'uvit: U-ViT engine CLI (ONNX Runtime; whole model or split into pipeline stages)',
    '',
    'usage: uvit <command> [--flags]      uvit <command> --help',
    '',
    'commands:',
    ...commands.map((c) => `  ${c.name.padEnd(w)}${c.summary}`),
  ].join('\n');
}

export interface MainIO {
  stdout(text: string): void;
  stderr(text: string): void;
}
const processIO: MainIO = {
  stdout: (t) => void process.stdout.write(t),
  stderr: (t) => void process.stderr.write(t),
};

/** Runs one `uvit` invocation and returns its exit code (never calls process.exit, so tests can run it in-process). */
export async function main(argv: string[], io: MainIO = processIO, commands: CommandEntry[] = COMMANDS): Promise<number> {
  const ctx: CommandContext = {
    log: (l) => io.stderr(l + '\n'),
    out: (l) => io.stdout(l + '\n'),
  };
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    const entry = name === 'help' && rest[0] ? commands.find((c) => c.name === rest[0]) : undefined;
    io.stdout((entry ? commandHelp(await entry.load()) : mainHelp(commands)) + '\n');
    if (name === undefined) return 2;
    return 0;
  }
  const entry = commands.find((c) => c.name === name);
  if (!entry) {
    io.stderr(`uvit: unknown command '${name}' (commands: ${commands.map((c) => c.name).join(', ')}; see uvit --help)\n`);
    return 2;
  }
  let cmd: Command;
  try {
    cmd = await entry.load();
  } catch (e) {
    io.stderr(`uvit ${name}: error: ${(e as Error).message}\n`);
    return 1;
  }
  try {
    const values = parseCommandArgs(cmd, rest);
    if (values === 'help') {
      io.stdout(commandHelp(cmd) + '\n');
      return 0;
    }
    await cmd.run(values, ctx);
    return 0;
  } catch (e) {
    const err = e as Error;
    if (err instanceof UsageError) {
      io.stderr(`${err.message}\nsee: uvit ${cmd.name} --help\n`);
      return 2;
    }
    io.stderr(`uvit ${cmd.name}: error: ${err.message ?? String(e)}\n`);
    if (process.env.UVIT_DEBUG) io.stderr(`${err.stack}\n`);
    return 1;
  }
}
