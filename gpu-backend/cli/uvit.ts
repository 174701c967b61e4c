// `uvit` command-line entry (bin/uvit.js imports this file); the dispatch lives in main.ts.
import { main } from './main.ts';

process.exitCode = await main(process.argv.slice(2));
