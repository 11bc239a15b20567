import { describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";
import type { CliContext } from "../../src/cli/context.js";
import { releaseTempRoots, withTempRoots } from "../../src/cli/temp-roots.js";
import { memoryHost } from "../../src/host/memory-host.js";
import { collectGarbage } from "../../src/profiles/gc.js";
import { readTempRoots } from "../../src/profiles/temp-roots.js";
import { LocalStore } from "../../src/store/local-store.js";

describe("temporary roots of CLI commands", () => {
  it("a path a command added survives a concurrent collection until the command ends", () => {
    const host = memoryHost();
    const store = withTempRoots(new LocalStore({ host, root: "/r" }));
    const p = store.addTextToStore("kept", "hello");
    // Another process collects while this one still holds its roots.
    const collector = new LocalStore({ host: host.fork(), root: "/r" });
    expect(collectGarbage(collector, { runtimeRoots: false }).paths).not.toContain(p);
    expect(collector.isValidPath(p)).toBe(true);
    expect([...readTempRoots(collector).keys()]).toContain(p);
    // The command ends: its roots go, and the path is garbage.
    releaseTempRoots();
    expect(readTempRoots(collector).size).toBe(0);
    expect(collectGarbage(collector, { runtimeRoots: false }).paths).toContain(p);
    expect(collector.isValidPath(p)).toBe(false);
  });

  it("tsnix store --add leaves no temporary roots behind when it ends", async () => {
    const host = memoryHost({ files: { "/src/f": "data" } });
    let out = "";
    const ctx: CliContext = {
      host,
      settings: new Map([["store", "/r"]]),
      stdout: (t) => void (out += typeof t === "string" ? t : new TextDecoder().decode(t)),
      stderr: () => {},
      readStdin: async () => new Uint8Array(),
      stdinChunks: async function* () {},
      env: () => undefined,
      cwd: "/",
    };
    expect(await main(["store", "--add", "/src/f"], ctx)).toBe(0);
    const store = new LocalStore({ host, root: "/r" });
    expect(store.isValidPath(out.trim())).toBe(true);
    expect(host.fs.readdir(`${store.stateDir}/temproots`)).toEqual([]);
  });
});
