import { defineConfig } from 'vitest/config';

// Two kinds of tests: Node (engine, backend, e2e) and workerd (edge, via @cloudflare/vitest-plugin).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'node',
          include: ['tests/{unit,parity,integration,e2e}/**/*.test.ts'],
          environment: 'node',
          testTimeout: 120_000,
          hookTimeout: 120_000,
          pool: 'forks',
        },
      },
      // chaos: the fast subset against the real edge / a real stage process (small fuzz counts, one fault);
      // everything else in tests/chaos runs under `npm run test:chaos`
      {
        test: {
          name: 'chaos-fast',
          include: ['tests/chaos/**/*.fast.test.ts'],
          environment: 'node',
          testTimeout: 120_000,
          hookTimeout: 240_000,
          pool: 'forks',
        },
      },
      // edge: workerd tests, and the Node-side checks of edge artifacts (OpenAPI validation)
      'tests/edge/vitest.config.ts',
      'tests/edge/sharded/vitest.config.ts',
      {
        test: { name: 'edge-node', include: ['tests/edge/**/*.node.test.ts'], environment: 'node', pool: 'forks' },
      },
    ],
  },
});
