import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    setupFiles: ["test/helpers/setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: keep the worker count modest so oracle processes get CPU too.
    maxWorkers: 2,
  },
});
