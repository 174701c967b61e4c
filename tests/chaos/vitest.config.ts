// `npm run test:chaos` (scripts/chaos.ts): every chaos file, one at a time (each starts its own stack; 2 cores).
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    name: 'chaos',
    root: fileURLToPath(new URL('../..', import.meta.url)),
    include: ['tests/chaos/**/*.test.ts'],
    environment: 'node',
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 300_000,
    hookTimeout: 240_000,
  },
});
