// Entry point of a spawned stage process (spawnStages): `node main.ts <uvit stage arguments>`.
import { stageMain } from './process.ts';

await stageMain(process.argv.slice(2));
