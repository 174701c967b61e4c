// Entry point of a spawned stage process (spawnStages): `node stageMain.ts <uvit stage arguments>`.
import { stageMain } from '../cli/commands/stage.ts';

await stageMain(process.argv.slice(2));
