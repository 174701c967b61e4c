#!/usr/bin/env node
// The `uvit-client` command of the published package (compiled to dist/; bin/uvit-client.js runs the sources in the repo).
import { main } from './cli.ts';

process.exitCode = await main(process.argv.slice(2));
