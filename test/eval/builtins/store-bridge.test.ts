/**
 * Import from derivation through the library API: an evaluator attached to
 * a store with {@link ImportFromDerivation}'s realiser builds what it
 * imports with the asynchronous `realise` (here the memory host's
 * in-process JavaScript builders), on both hosts.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { realise, type JsBuilder } from "../../../src/build/realise.js";
import { Evaluator } from "../../../src/eval/api.js";
import { EvalError } from "../../../src/eval/errors.js";
import { ImportFromDerivation, ImportFromDerivationError, attachStore } from "../../../src/eval/builtins/store-bridge.js";
import { LocalStore } from "../../../src/store/local-store.js";
import { HOSTS, type HostFixture } from "../../helpers/hosts.js";

/** Writes `$text` to `$out`, counting its runs. */
function writer(counter: { n: number }): JsBuilder {
  return (ctx) => {
    counter.n++;
    ctx.fs.writeFile(ctx.env["out"]!, ctx.env["text"]!);
    return 0;
  };
}

const drv = (name: string, text: string) => `derivation { name = "${name}"; system = "x86_64-linux"; builder = "js:write"; text = ${JSON.stringify(text)}; }`;

describe.each(HOSTS)("import from derivation on the $name host", ({ make }) => {
  let fx: HostFixture;
  let store: LocalStore;
  beforeEach(() => {
    fx = make();
    store = new LocalStore({ host: fx.host, root: `${fx.dir}/store` });
  });
  afterEach(() => fx.dispose());

  function setup(builders: Record<string, JsBuilder>) {
    const ev = new Evaluator({ host: fx.host, trace: () => {} });
    const ifd = new ImportFromDerivation(async (drvPath, outputs) => {
      await realise([`${drvPath}!${outputs.join(",")}`], { store, builders });
    });
    attachStore(ev, store, { realiser: ifd.realiser });
    return { ev, ifd };
  }

  it("imports a built Nix file and reads a built file", async () => {
    const runs = { n: 0 };
    const { ev, ifd } = setup({ "js:write": writer(runs) });
    const src = `let a = import (${drv("a", "{ x = 40; }")}); b = builtins.readFile (${drv("b", "2")}); in a.x + builtins.fromJSON b`;
    const v = await ifd.run(() => ev.toPlain(ev.evaluate(src)));
    expect(v).toBe(42);
    expect(ifd.rounds).toBe(2);
    expect(runs.n).toBe(2);
    // Built once: a second evaluation finds the outputs valid.
    const again = await ifd.run(() => ev.toPlain(ev.evaluate(src)));
    expect(again).toBe(42);
    expect(ifd.rounds).toBe(0);
    expect(runs.n).toBe(2);
  });

  it("a failing build is an evaluation error at the import, with the build's exit status", async () => {
    const { ev, ifd } = setup({ "js:write": () => 3 });
    const err = await ifd.run(() => ev.evaluate(`1 + import (${drv("bad", "1")})`)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EvalError);
    const e = err as EvalError;
    expect(e.message).toMatch(/^builder for '\/nix\/store\/[a-z0-9]{32}-bad\.drv' failed with exit code 3/);
    expect(e.exitCode).toBe(100);
    expect(e.trace[0]!.message).toMatch(/^while realising the context of path '\/nix\/store\/[a-z0-9]{32}-bad'$/);
  });

  it("tryEval does not swallow the pause for a build", async () => {
    const runs = { n: 0 };
    const { ev, ifd } = setup({ "js:write": writer(runs) });
    const v = await ifd.run(() => ev.toPlain(ev.evaluate(`(builtins.tryEval (import (${drv("t", "7")}))).value`)));
    expect(v).toBe(7);
  });

  it("allow-import-from-derivation = false refuses with Nix's message", async () => {
    const ev = new Evaluator({ host: fx.host, trace: () => {} });
    attachStore(ev, store, { allowImportFromDerivation: false });
    expect(() => ev.evaluate(`import (${drv("no", "1")})`)).toThrow(/^cannot build '\/nix\/store\/[a-z0-9]{32}-no\.drv' during evaluation because the option 'allow-import-from-derivation' is disabled$/);
  });

  it("import of a store .drv is the derivation's value (first output in Nix's order)", () => {
    const ev = new Evaluator({ host: fx.host, trace: () => {} });
    attachStore(ev, store);
    const v = ev.toPlain(
      ev.evaluate(`let d = derivation { name = "m"; system = "s"; builder = "b"; outputs = [ "out" "bin" ]; }; i = import (builtins.unsafeDiscardStringContext d.drvPath);
        in [ (i.outPath == d.bin.outPath) (i.out.outPath == d.out.outPath) (i.drvPath == d.drvPath) i.outputName i.type (builtins.length i.all) ]`),
    );
    expect(v).toEqual([true, true, true, "bin", "derivation", 2]);
  });

  it("without a realiser, says that a builder is needed", () => {
    const ev = new Evaluator({ host: fx.host, trace: () => {} });
    attachStore(ev, store);
    expect(() => ev.evaluate(`import (${drv("none", "1")})`)).toThrow(ImportFromDerivationError);
  });
});
