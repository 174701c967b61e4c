// The subcommand contract of `uvit`: each command lives in commands/<name>.ts and is registered in commands/index.ts.
// Arguments are parsed with node:util parseArgs (strict), then checked against the option specs here, so every
// command reports unknown flags, missing flags and bad values the same way.
import { parseArgs } from 'node:util';

export interface OptionSpec {
  type: 'string' | 'boolean';
  /** one-line help */
  help: string;
  /** placeholder shown in help, e.g. "C.json" */
  value?: string;
  required?: boolean;
  /** allowed values of a string option */
  choices?: readonly string[];
  /** default shown in help and applied before run() */
  default?: string | boolean;
  short?: string;
}

export type OptionSpecs = Record<string, OptionSpec>;
export type Values = Record<string, string | boolean | undefined>;

export interface Command {
  name: string;
  summary: string;
  /** usage line(s) after "uvit " */
  usage: string;
  options: OptionSpecs;
  /** free-form notes appended to `uvit <cmd> --help` */
  notes?: string;
  run(values: Values, ctx: CommandContext): Promise<void>;
}

export interface CommandContext {
  /** progress and diagnostics (stderr) */
  log(line: string): void;
  /** results meant for the user (stdout) */
  out(line: string): void;
}

/** An error in how the command was called: printed with a pointer to --help, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export function parseCommandArgs(cmd: Command, argv: string[]): Values | 'help' {
  if (argv.includes('--help') || argv.includes('-h')) return 'help';
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {};
  for (const [k, s] of Object.entries(cmd.options)) options[k] = { type: s.type, ...(s.short ? { short: s.short } : {}) };
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: true });
  } catch (e) {
    throw new UsageError(cleanParseError(cmd, (e as Error).message));
  }
  if (parsed.positionals.length) {
    throw new UsageError(`uvit ${cmd.name}: unexpected argument '${parsed.positionals[0]}' (all inputs are given as --flags)`);
  }
  const values: Values = {};
  for (const [k, s] of Object.entries(cmd.options)) {
    const v = parsed.values[k] as string | boolean | undefined;
    values[k] = v ?? s.default;
    if (values[k] === undefined && s.required) {
      throw new UsageError(`uvit ${cmd.name}: missing required flag --${k}${s.value ? ` ${s.value}` : ''} (${s.help})`);
    }
    if (s.type === 'string' && typeof v === 'string') {
      if (v === '') throw new UsageError(`uvit ${cmd.name}: --${k} needs a non-empty value`);
      if (s.choices && !s.choices.includes(v)) {
        throw new UsageError(`uvit ${cmd.name}: --${k} must be one of ${s.choices.join(' | ')}, got '${v}'`);
      }
    }
  }
  return values;
}

function cleanParseError(cmd: Command, msg: string): string {
  const unknown = /Unknown option '([^']+)'/.exec(msg);
  if (unknown) {
    const flag = unknown[1];
    const near = closest(flag.replace(/^-+/, ''), Object.keys(cmd.options));
    return `uvit ${cmd.name}: unknown flag ${flag}${near ? ` (did you mean --${near}?)` : ''}`;
  }
  const missingValue = /Option '(?:-\w, )?(--[^ ]+) <value>' argument missing/.exec(msg);
  if (missingValue) return `uvit ${cmd.name}: flag ${missingValue[1]} needs a value`;
  const notBool = /Option '(--[^']+)' does not take an argument/.exec(msg);
  if (notBool) return `uvit ${cmd.name}: flag ${notBool[1]} takes no value`;
  return `uvit ${cmd.name}: ${msg.split('\n')[0]}`;
}

function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(word, c);
    if (d < bestD) [best, bestD] = [c, d];
  }
  return bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0];
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j];
      dp[j] = Math.min(dp[j] + 1, dp[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length];
}

export function commandHelp(cmd: Command): string {
  const rows = Object.entries(cmd.options).map(([k, s]) => {
    const flag = `  ${s.short ? `-${s.short}, ` : ''}--${k}${s.type === 'string' ? ` ${s.value ?? 'VALUE'}` : ''}`;
    const extra = [
      s.required ? 'required' : '',
      s.choices ? `one of ${s.choices.join('|')}` : '',
      s.default !== undefined && s.default !== false ? `default ${s.default}` : '',
    ].filter(Boolean);
    return [flag, s.help + (extra.length ? ` (${extra.join('; ')})` : '')] as const;
  });
  const w = Math.min(40, Math.max(...rows.map(([f]) => f.length)) + 2);
  const lines = rows.map(([f, h]) => (f.length + 2 > w ? `${f}\n${' '.repeat(w)}${h}` : f.padEnd(w) + h));
  return [`uvit ${cmd.name}: ${cmd.summary}`, '', `usage: uvit ${cmd.usage}`, '', 'options:', ...lines, '  -h, --help'.padEnd(w) + 'show this help']
    .concat(cmd.notes ? ['', cmd.notes.trim()] : [])
    .join('\n');
}

// ---- value helpers shared by commands

export function intValue(cmdName: string, flag: string, v: string | boolean | undefined, min = 1): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== 'string' || !/^-?\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min) {
    throw new UsageError(`uvit ${cmdName}: --${flag} must be an integer >= ${min}, got '${v}'`);
  }
  return n;
}

export function numberValue(cmdName: string, flag: string, v: string | boolean | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== 'string' || v.trim() === '' || !Number.isFinite(n)) {
    throw new UsageError(`uvit ${cmdName}: --${flag} must be a finite number, got '${v}'`);
  }
  return n;
}

export const str = (v: string | boolean | undefined): string | undefined => (typeof v === 'string' ? v : undefined);

// ---- the registry's entries: built-in commands are eager; heavy ones (stage servers, the worker) load on use so
// `uvit --help` and the other commands start fast.

export interface CommandEntry {
  name: string;
  summary: string;
  load(): Promise<Command>;
}

export const eager = (c: Command): CommandEntry => ({ name: c.name, summary: c.summary, load: async () => c });

/** `load` returns the module that defines the command; `exportName` names it there. */
export function lazy(name: string, summary: string, exportName: string, load: () => Promise<object>): CommandEntry {
  return {
    name,
    summary,
    async load() {
      const mod = (await load()) as Record<string, unknown>;
      const c = mod[exportName] as Command | undefined;
      if (!c || typeof c.run !== 'function' || c.name !== name) {
        throw new Error(`command '${name}' is not available: its module does not export a Command '${exportName}' named '${name}'`);
      }
      return c;
    },
  };
}
