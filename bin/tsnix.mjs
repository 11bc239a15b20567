#!/usr/bin/env node
import module from "node:module";

// Node >= 22.1 can keep V8's compiled code of our modules between runs, which
// saves most of their parse and compile time on every start; Node 20 lacks it
// (the call is then skipped). The CLI is imported only after, so its modules
// are compiled with the cache in place.
module.enableCompileCache?.();
const { run } = await import("../dist/cli.js");
run(process.argv.slice(2));
