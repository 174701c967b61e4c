#!/usr/bin/env node
// Runs the TypeScript client CLI directly (Node >= 22.18 strips types natively; npm scripts and npx use the node@22 devDependency).
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  console.error(`uvit-client needs Node >= 22.18 (found ${process.versions.node}); run it through npx or npm scripts, which use the project's node@22.`);
  process.exit(2);
}
const { main } = await import('../client/cli.ts');
process.exitCode = await main(process.argv.slice(2));
