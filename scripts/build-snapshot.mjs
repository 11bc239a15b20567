// Builds the CLI's V8 startup snapshot (see src/cli/snapshot.ts): one
// CommonJS bundle of the CLI, then `node --build-snapshot` on it, for the
// Node binary running this script. bin/tsnix uses the snapshot only when
// dist/snapshot/node.txt names the Node it is about to run (and that binary
// is not newer than the snapshot) with the same stack flag; otherwise, or
// when this step fails (it only warns, except under CI), it starts from
// bin/tsnix.mjs.
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "dist/snapshot");
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

if (process.env["TSNIX_NO_SNAPSHOT"] === "1") {
  console.log("snapshot: skipped (TSNIX_NO_SNAPSHOT=1)");
  process.exit(0);
}

// node:worker_threads may not be loaded while the snapshot is taken: its
// main-thread state (a SharedArrayBuffer that workers read the current
// directory through) cannot be snapshotted, and workers started later fail.
// Modules import it at their top level, so the bundle gets a stand-in that
// loads it on first use; while the snapshot is taken, the only questions asked
// (am I a worker? — no) are answered without it.
const WORKER_THREADS_EXPORTS = Object.keys(await import("node:worker_threads")).filter((k) => k !== "default");
const lazyWorkerThreads = {
  name: "lazy-worker-threads",
  setup(b) {
    b.onResolve({ filter: /^(node:)?worker_threads$/ }, (args) =>
      args.importer.endsWith("lazy-worker-threads") ? { path: "node:worker_threads", external: true } : { path: "lazy-worker-threads", namespace: "tsnix" },
    );
    b.onLoad({ filter: /.*/, namespace: "tsnix" }, () => ({
      loader: "js",
      contents: `
        const { startupSnapshot } = require("node:v8");
        let real;
        for (const key of ${JSON.stringify(WORKER_THREADS_EXPORTS)}) {
          Object.defineProperty(module.exports, key, {
            enumerable: true,
            get() {
              if (startupSnapshot.isBuildingSnapshot()) {
                if (key === "isMainThread") return true;
                if (key === "parentPort" || key === "workerData") return null;
                throw new Error("node:worker_threads." + key + " used while taking the snapshot");
              }
              real ??= require("node:worker_threads");
              return real[key];
            },
          });
        }`,
    }));
  },
};

try {
  const bundle = join(out, "cli.cjs");
  await build({
    entryPoints: [join(root, "src/cli/snapshot.ts")],
    outfile: bundle,
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node20",
    // Native and lazily required packages stay outside; they are loaded with createRequire at run time.
    external: ["@napi-rs/lzma", "seek-bzip", "smol-toml", "tar"],
    mainFields: ["module", "main"],
    alias: { "fp-ts/lib": "fp-ts/es6" },
    // As tsup's shim: the bundle's own URL, for workers and files found next to it.
    define: { "import.meta.url": "__tsnixBundleUrl" },
    banner: { js: 'var __tsnixBundleUrl = require("node:url").pathToFileURL(__filename).href;' },
    logLevel: "warning",
    // Whitespace and syntax only (names stay, for error classes and traces):
    // the bundle's source text is part of the snapshot's heap, and a smaller
    // heap deserialises faster at every start (~4 ms of ~40 measured).
    minifyWhitespace: true,
    minifySyntax: true,
    plugins: [lazyWorkerThreads],
  });
  const blob = join(out, "cli.blob");
  // V8 refuses a snapshot taken under other V8 flags, and bin/tsnix passes
  // --stack-size when it can raise the stack limit: take it the same way.
  // The stack limit and flag must match bin/tsnix's.
  const script = `if ulimit -s 139264 2>/dev/null; then echo --stack-size=131072 >&3; exec "$0" --stack-size=131072 "$@"; else echo - >&3; exec "$0" "$@"; fi`;
  const flagFile = join(out, "flag.txt");
  // --no-rehash-snapshot and --min-semi-space-size: bin/tsnix starts with them (see the notes there), and V8 checks that the flags match.
  execFileSync("/bin/sh", ["-c", `exec 3>"${flagFile}"; ${script}`, process.execPath, "--no-rehash-snapshot", "--min-semi-space-size=3", "--snapshot-blob", blob, "--build-snapshot", bundle], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  const flag = readFileSync(flagFile, "utf8").trim();
  rmSync(flagFile);
  // What bin/tsnix compares: the Node binary, the stack flag it must pass, and the other V8 flag the snapshot was taken with.
  writeFileSync(join(out, "node.txt"), `${process.execPath} ${flag} --no-rehash-snapshot --min-semi-space-size=3\n`);
  console.log(`snapshot: ${blob} (${(statSync(blob).size / 1e6).toFixed(1)} MB) for ${process.execPath} ${process.version}`);
} catch (e) {
  rmSync(out, { recursive: true, force: true });
  const msg = e && typeof e === "object" && "stderr" in e && e.stderr ? String(e.stderr).trim().split("\n").slice(-3).join(" | ") : String(e);
  console.warn(`snapshot: not built, tsnix will start without it: ${msg}`);
  if (process.env["CI"] === "true") process.exitCode = 1;
}
