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
  // io-ts and fp-ts ship CommonJS only: importing them from ESM makes Node
  // run its CJS export lexer over ~100 KB of their files on every start-up
  // (~35 ms of a ~140 ms `tsnix store --query`). Bundled, they are plain code
  // in the chunk that needs them. Their codecs are duck-typed, so ours still
  // compose with a user's own io-ts.
  noExternal: ["io-ts", "fp-ts"],
  // Their ES module builds (es6/) let esbuild keep only what is used: io-ts's
  // codecs plus fp-ts's Either, not all of fp-ts's CommonJS graph.
  esbuildOptions(o) {
    o.mainFields = ["module", "main"];
    o.alias = { ...o.alias, "fp-ts/lib": "fp-ts/es6" };
  },
});
