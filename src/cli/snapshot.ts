/**
 * Entry of the CLI's V8 startup snapshot (scripts/build-snapshot.mjs bundles
 * it into one CommonJS file and runs `node --build-snapshot` on it).
 *
 * Loading the CLI's modules (reading, parsing and linking ~800 KB of
 * JavaScript and the Node built-ins they use) is most of what a short tsnix
 * command costs beyond Node's own start. A snapshot holds the heap with all
 * of that already done, so `bin/tsnix` starts from it when one was built
 * for the Node binary at hand, and from bin/tsnix.mjs otherwise.
 *
 * What runs while the snapshot is taken must not depend on the run: module
 * top levels may not read the environment, the command line, the clock or
 * the current directory, nor make SharedArrayBuffers (they cannot be
 * snapshotted). Settings are read when a command runs.
 */
import { startupSnapshot } from "node:v8";
import { run } from "./main.js";
// Loaded here so that the snapshot holds them initialised; main.ts imports them on demand.
import "./hash.js";
import "./store.js";
import "./instantiate.js";
import "./instantiate-run.js";
import "./instantiate-store.js";
import "./env.js";
import "./collect-garbage.js";
import "./os.js";
import "./build.js";
import "./copy.js";
import "./log.js";

if (startupSnapshot.isBuildingSnapshot()) {
  startupSnapshot.setDeserializeMainFunction(() => {
    // No script name in argv when starting from a snapshot: [node, ...arguments].
    run(process.argv.slice(1));
  });
}
