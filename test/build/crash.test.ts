import { describe, expect, it } from "vitest";
import { memoryHost } from "../../src/host/memory-host.js";
import { faultHost } from "../../src/host/fault-host.js";
import { LocalStore } from "../../src/store/local-store.js";
import { realise, type JsBuilder } from "../../src/build/realise.js";
import { addDerivation } from "./helpers.js";

const twoFiles: JsBuilder = (ctx) => {
  ctx.fs.mkdir(`${ctx.env["out"]!}/sub`, { recursive: true });
  ctx.fs.writeFile(`${ctx.env["out"]!}/sub/a`, `a ${ctx.env["dep"] ?? ""}`);
  ctx.fs.writeFile(`${ctx.env["out"]!}/b`, "b");
  return 0;
};

describe("a build killed at any filesystem step", () => {
  it("leaves its outputs invalid or complete, and the next realisation finishes the job", { timeout: 120_000 }, async () => {
    const h = memoryHost();
    const setup = new LocalStore({ host: h, root: "/store" });
    const a = addDerivation(setup, { name: "a", builder: "js:two" });
    const b = addDerivation(setup, { name: "b", builder: "js:two", env: { dep: a.out }, inputDrvs: { [a.drvPath]: ["out"] } });
    // How many steps a whole realisation takes, to spread the crash points over them.
    const probeHost = h.fork();
    const probe = faultHost(probeHost, {});
    await realise([b.drvPath], { store: new LocalStore({ host: probe, root: "/store" }), builders: { "js:two": twoFiles } });
    const total = probe.calls;
    h.exitProcess(probeHost.pid);
    new LocalStore({ host: h, root: "/store" }).deletePaths([b.out, a.out]);
    const step = Math.max(1, Math.ceil(total / 40));
    let completed = false;
    let rounds = 0;
    // Crash points spread over the whole run (crashed runs leave build directories behind, as Nix's do, so later runs take a few more steps).
    for (let k = 1; k <= total; k += step) {
      rounds++;
      const proc = h.fork();
      const fh = faultHost(proc, { crashAfter: k });
      const store = new LocalStore({ host: fh, root: "/store" });
      try {
        await realise([b.drvPath], { store, builders: { "js:two": twoFiles } });
        completed ||= !fh.crashed;
      } catch {
        expect(fh.crashed).toBe(true);
      }
      h.exitProcess(proc.pid);
      // Whatever the crash left: valid paths are intact.
      const check = new LocalStore({ host: h, root: "/store" });
      for (const p of [a.out, b.out]) if (check.isValidPath(p)) expect(check.verifyPath(p).ok).toBe(true);
      if (check.isValidPath(b.out)) expect(check.isValidPath(a.out)).toBe(true);
      // A later process completes the realisation.
      const next = h.fork();
      const s2 = new LocalStore({ host: next, root: "/store" });
      await realise([b.drvPath], { store: s2, builders: { "js:two": twoFiles } });
      expect(s2.verifyPath(b.out).ok).toBe(true);
      expect(new TextDecoder().decode(next.fs.readFile(`/store${b.out}/sub/a`))).toBe(`a ${a.out}`);
      expect(s2.queryPathInfo(b.out).references).toEqual([a.out]);
      h.exitProcess(next.pid);
      // Start the next round from nothing built.
      s2.deletePaths([b.out, a.out]);
    }
    expect(rounds).toBeGreaterThan(10);
    void completed;
  });
});
