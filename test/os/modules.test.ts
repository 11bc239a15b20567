import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { Evaluator, toPlain } from "../../src/eval/api.js";
import { nodeHost } from "../../src/host/node-host.js";
import { describeOracle, oracleRoot, runNix } from "../helpers/oracle.js";

const LIB = fileURLToPath(new URL("../../nix/lib", import.meta.url));
const EVAL_CONFIG = fileURLToPath(new URL("../../nix/eval-config.nix", import.meta.url));

/** An evalModules call over inline modules, returning config (or what `select` picks). */
const modules = (mods: string, select = "config") => `let lib = import ${LIB}; in (lib.evalModules { modules = [ ${mods} ]; }).${select}`;

function tsnixEval(expr: string): unknown {
  const ev = new Evaluator({ host: nodeHost() });
  return toPlain(ev.evaluate(expr, { strict: true }));
}

function tsnixError(expr: string): string {
  try {
    tsnixEval(expr);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error("expected an evaluation error");
}

/** Module-system programs whose results tsnix and Nix 2.8 must agree on. */
const CASES: Record<string, string> = {
  priorities: modules(`
    ({ lib, ... }: { options.a = lib.mkOption { type = lib.types.int; default = 1; }; options.b = lib.mkOption { type = lib.types.str; default = "d"; }; })
    ({ lib, ... }: { a = lib.mkDefault 2; b = lib.mkForce "forced"; })
    ({ lib, ... }: { a = lib.mkOverride 900 3; b = "plain"; })`),
  order: modules(`
    ({ lib, ... }: { options.l = lib.mkOption { type = lib.types.listOf lib.types.int; }; options.s = lib.mkOption { type = lib.types.lines; }; })
    ({ lib, ... }: { l = lib.mkAfter [ 9 ]; s = lib.mkOrder 1200 "late"; })
    ({ lib, ... }: { l = lib.mkMerge [ [ 1 ] (lib.mkBefore [ 0 ]) (lib.mkIf false [ 99 ]) ]; s = lib.mkBefore "early"; })
    { l = [ 5 ]; s = "middle"; }`),
  conditions: modules(`
    ({ lib, config, ... }: { options.en = lib.mkEnableOption "x"; options.v = lib.mkOption { type = lib.types.nullOr lib.types.str; default = null; };
      config = lib.mkIf config.en { v = "on"; }; })
    { en = true; }`),
  submodules: modules(`
    ({ lib, ... }: with lib; { options.users = mkOption { type = types.attrsOf (types.submodule ({ name, config, ... }: {
        options.home = mkOption { type = types.str; default = "/home/\${name}"; };
        options.shell = mkOption { type = types.enum [ "bash" "zsh" ]; default = "bash"; };
        options.groups = mkOption { type = types.listOf types.str; default = [ ]; };
      })); default = { }; };
      options.list = mkOption { type = types.listOf (types.submodule { options.x = mkOption { type = types.int; default = 7; }; }); default = [ ]; };
    })
    ({ lib, ... }: { users.alice.groups = [ "wheel" ]; users.bob.shell = "zsh"; list = [ { } { x = 1; } ]; })
    ({ lib, ... }: { users.alice = { groups = [ "audio" ]; home = lib.mkForce "/srv/alice"; }; })`),
  extendSubmodule: modules(`
    ({ lib, ... }: with lib; { options.s = mkOption { type = types.attrsOf (types.submodule { options.a = mkOption { type = types.int; default = 1; }; }); default = { }; }; })
    ({ lib, ... }: with lib; { options.s = mkOption { type = types.attrsOf (types.submodule { options.b = mkOption { type = types.int; default = 2; }; }); }; })
    { s.x.a = 10; }`),
  types: `let c = ${modules(`
    ({ lib, ... }: with lib; {
      options.e = mkOption { type = types.either types.int types.str; };
      options.o = mkOption { type = types.oneOf [ types.bool types.int (types.listOf types.str) ]; };
      options.m = mkOption { type = types.strMatching "[a-z]+"; };
      options.f = mkOption { type = types.functionTo (types.listOf types.int); };
      options.any = mkOption { type = types.anything; };
      options.lazy = mkOption { type = types.lazyAttrsOf types.int; };
      options.p = mkOption { type = types.path; };
      options.applied = mkOption { type = types.int; apply = x: x * 2; };
      options.ro = mkOption { type = types.str; readOnly = true; default = "r"; };
    })
    ({ lib, ... }: { e = "s"; o = [ "a" ]; m = "abc"; f = x: [ x ]; any = { a.b = 1; c = [ 1 ]; }; lazy.x = 1; p = "/etc"; applied = 21; })
    ({ lib, ... }: { f = x: [ (x + 1) ]; any = { a.d = 2; c = [ 2 ]; }; lazy.y = 2; })`)}; in removeAttrs c [ "f" ] // { fOut = c.f 1; }`,
  imports: modules(`
    ({ lib, ... }: { imports = [ ({ lib, ... }: { options.x = lib.mkOption { type = lib.types.listOf lib.types.str; default = [ ]; }; }) ]; x = [ "outer" ]; })
    ({ lib, ... }: { imports = [ { x = [ "inner" ]; } ]; })`),
  specialArgs: `let lib = import ${LIB}; in (lib.evalModules { specialArgs = { greeting = "hi"; }; modules = [
    ({ lib, greeting, ... }: { options.g = lib.mkOption { type = lib.types.str; }; config.g = greeting; })
    ({ lib, extra, ... }: { options.h = lib.mkOption { type = lib.types.str; }; config.h = extra; })
    { _module.args.extra = "from _module.args"; } ]; }).config`,
  optionsArg: modules(`
    ({ lib, ... }: { options.a = lib.mkOption { type = lib.types.int; default = 1; }; options.b = lib.mkOption { type = lib.types.int; default = 0; }; })
    ({ options, ... }: { b = if options.a.isDefined then options.a.highestPrio else 0; })`),
  renamed: modules(`
    ({ lib, ... }: { imports = [ (lib.mkRenamedOptionModule [ "old" ] [ "new" ]) ]; options.new = lib.mkOption { type = lib.types.str; default = "n"; }; options.warnings = lib.mkOption { type = lib.types.listOf lib.types.str; default = [ ]; }; })
    { old = "via-old"; }`),
  disabled: `let lib = import ${LIB}; m1 = { lib, ... }: { options.a = lib.mkOption { default = 1; }; }; in (lib.evalModules { modules = [
    ({ lib, ... }: { options.a = lib.mkOption { default = 0; }; })
    { key = "drop-me"; imports = [ ({ ... }: { a = 5; }) ]; }
    { disabledModules = [ { key = "drop-me"; } ]; } ]; }).config`,
};

/** Programs that must fail with the same message in tsnix and Nix 2.8. */
const ERRORS: Record<string, string> = {
  badType: modules(`({ lib, ... }: { options.n = lib.mkOption { type = lib.types.int; }; }) { _file = "/etc/nixos/configuration.nix"; n = "five"; }`),
  conflict: modules(`({ lib, ... }: { options.s = lib.mkOption { type = lib.types.str; }; }) { _file = "/a.nix"; s = "x"; } { _file = "/b.nix"; s = "y"; }`),
  undeclared: modules(`({ lib, ... }: { options.services.openssh.enable = lib.mkEnableOption "ssh"; }) { _file = "/etc/nixos/configuration.nix"; services.opensh.enable = true; }`),
  undefined: modules(`({ lib, ... }: { options.u = lib.mkOption { type = lib.types.int; }; })`),
  readOnly: modules(`({ lib, ... }: { options.r = lib.mkOption { readOnly = true; type = lib.types.int; }; }) { _file = "/a.nix"; r = 1; } { _file = "/b.nix"; r = 2; }`),
  nullAndNot: modules(`({ lib, ... }: { options.x = lib.mkOption { type = lib.types.nullOr lib.types.int; }; }) { _file = "/a.nix"; x = null; } { _file = "/b.nix"; x = 1; }`),
  removed: `let lib = import ${LIB}; r = lib.evalModules { modules = [ (lib.mkRemovedOptionModule [ "gone" ] "Use \`other' instead.") ({ lib, ... }: { options.assertions = lib.mkOption { default = [ ]; }; }) { _file = "/c.nix"; gone = 1; } ]; }; in map (a: a.message) (builtins.filter (a: !a.assertion) r.config.assertions)`,
  duplicateUid: `(import ${EVAL_CONFIG} { configuration = { boot.loader.grub.device = "nodev"; users.users.a = { isNormalUser = true; uid = 1000; }; users.users.b = { isNormalUser = true; uid = 1000; }; }; }).toplevel.outPath`,
  assertion: `(import ${EVAL_CONFIG} { configuration = { boot.loader.grub.enable = true; users.users.x = { isNormalUser = true; isSystemUser = true; }; }; }).toplevel.outPath`,
};

describe("module system (tsnix alone)", () => {
  it("merges by priority, order and condition", () => {
    expect(tsnixEval(CASES["priorities"]!)).toEqual({ a: 3, b: "forced" }); // 900 beats mkDefault (1000)
    expect(tsnixEval(CASES["order"]!)).toEqual({ l: [0, 1, 5, 9], s: "early\nmiddle\nlate" });
    expect(tsnixEval(CASES["conditions"]!)).toEqual({ en: true, v: "on" });
  });
  it("submodules get their name and merge per attribute", () => {
    expect(tsnixEval(CASES["submodules"]!)).toEqual({
      list: [{ x: 7 }, { x: 1 }],
      users: { alice: { groups: ["wheel", "audio"], home: "/srv/alice", shell: "bash" }, bob: { groups: [], home: "/home/bob", shell: "zsh" } },
    });
  });
  it("names the option and every defining file in errors", () => {
    expect(tsnixError(ERRORS["badType"]!)).toBe("A definition for option `n' is not of type `signed integer'. Definition values:\n- In `/etc/nixos/configuration.nix': \"five\"");
    expect(tsnixError(ERRORS["conflict"]!)).toBe(
      "The option `s' has conflicting definition values:\n- In `/a.nix': \"x\"\n- In `/b.nix': \"y\"\nUse `lib.mkForce value` or `lib.mkDefault value` to change the priority on any of these definitions.",
    );
    expect(tsnixError(ERRORS["undeclared"]!)).toBe(
      "The option `services.opensh' does not exist. Definition values:\n- In `/etc/nixos/configuration.nix':\n    {\n      enable = true;\n    }\n\nDid you mean `services.openssh'?",
    );
    expect(tsnixError(ERRORS["assertion"]!)).toContain("\nFailed assertions:\n- Exactly one of users.users.x.isSystemUser and users.users.x.isNormalUser must be set.\n- You must set the option ‘boot.loader.grub.devices’");
  });
});

describeOracle("module system vs Nix 2.8", () => {
  const store = oracleRoot();
  afterAll(() => store.dispose());
  const nixEval = (expr: string) => runNix("nix-instantiate", ["--eval", "--strict", "--json", "--read-write-mode", "-E", expr], { root: store.root });

  for (const [name, expr] of Object.entries(CASES)) {
    it(`${name}: same value`, () => {
      const r = nixEval(expr);
      expect(r.status, r.stderr).toBe(0);
      const nixValue = JSON.parse(r.stdout.toString("utf8")) as unknown;
      let ours: unknown;
      try {
        ours = tsnixEval(expr);
      } catch (e) {
        throw new Error(`tsnix failed: ${(e as Error).message}`);
      }
      expect(JSON.parse(JSON.stringify(ours, (_k, v: unknown) => (typeof v === "object" && v !== null && "function" in v ? "<function>" : v)))).toEqual(
        JSON.parse(JSON.stringify(nixValue, (_k, v: unknown) => v)),
      );
    });
  }

  for (const [name, expr] of Object.entries(ERRORS)) {
    it(`${name}: same outcome`, () => {
      const r = nixEval(expr);
      if (r.status === 0) {
        expect(tsnixEval(expr)).toEqual(JSON.parse(r.stdout.toString("utf8")));
        return;
      }
      const ours = tsnixError(expr);
      // Nix prints "error: <message>" followed by a position; the message text must be the same.
      expect(r.stderr).toContain(ours.split("\n")[0]!);
      expect(r.stderr.replace(/\s+/g, " ")).toContain(ours.replace(/\s+/g, " "));
    });
  }
});
