import { defineConfig } from "tsup";

// Declarations come from TypeScript 7 (tsc -p tsconfig.build.json) and are
// rolled up by api-extractor: tsup's own dts step needs the TypeScript 5/6
// JavaScript API, which the native TypeScript 7 compiler no longer ships.
export default defineConfig({
  entry: { index: "src/index.ts", cli: "src/cli/main.ts" },
  format: ["esm", "cjs"],
  dts: false,
  sourcemap: true,
  clean: true,
  target: "node20",
  splitting: true,
  shims: true,
});
