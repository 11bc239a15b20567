/**
 * The in-process builder behind the OS modules' derivations (builder
 * "tsnix:os"): text files and scripts, the `etc` tree, and the system's top
 * level. Being ordinary input-addressed derivations, a configuration gives
 * the same store paths on any machine, and the top level may refer to
 * itself (boot.json, activate) as NixOS's does.
 */
import type { JsBuilder, JsBuilderContext } from "../build/realise.js";
import type { HostFs } from "../host/host.js";
import { mkdirp } from "../host/util.js";
import { OsError } from "./errors.js";
import type { SystemSpec } from "./spec.js";

/** The builder name the modules use. @public */
export const OS_BUILDER = "tsnix:os";

function need(env: Readonly<Record<string, string>>, name: string): string {
  const v = env[name];
  if (v === undefined) throw new OsError("builder", `tsnix:os builder: attribute '${name}' missing`);
  return v;
}

function parentOf(p: string): string {
  return p.slice(0, p.lastIndexOf("/")) || "/";
}

interface EtcEntry {
  readonly target: string;
  readonly source: string;
  readonly mode: string;
  readonly user: string;
  readonly group: string;
  readonly uid: number;
  readonly gid: number;
}

function buildEtc(fs: HostFs, out: string, entries: readonly EtcEntry[]): void {
  const etc = `${out}/etc`;
  mkdirp(fs, etc);
  const seen = new Set<string>();
  for (const e of entries) {
    const target = e.target.replace(/^\/+/, "").replace(/\/+$/, "");
    if (target === "" || target.split("/").some((c) => c === ".." || c === ".")) throw new OsError("etc-target", `environment.etc target '${e.target}' is not a relative path inside /etc`, { target: e.target });
    if (seen.has(target)) throw new OsError("etc-duplicate", `environment.etc: two entries have the target '${target}'`, { target });
    seen.add(target);
    const dst = `${etc}/${target}`;
    mkdirp(fs, parentOf(dst));
    fs.symlink(e.source, dst);
    // As NixOS's etc.nix: every entry that is not a plain symlink (copies and direct-symlink alike) gets the three side files.
    if (e.mode !== "symlink") {
      fs.writeFile(`${dst}.mode`, `${e.mode}\n`);
      fs.writeFile(`${dst}.uid`, `${e.user}\n`);
      fs.writeFile(`${dst}.gid`, `${e.group}\n`);
    }
  }
}

function script(lines: readonly string[]): string {
  return `#!/bin/sh\n${lines.join("\n")}\n`;
}

function buildToplevel(fs: HostFs, out: string, spec: SystemSpec): void {
  mkdirp(fs, `${out}/bin`);
  fs.symlink(spec.etc, `${out}/etc`);
  fs.symlink(spec.sw, `${out}/sw`);
  if (spec.boot.kernel !== null) fs.symlink(spec.boot.kernel, `${out}/kernel`);
  if (spec.boot.initrd !== null) fs.symlink(spec.boot.initrd, `${out}/initrd`);
  fs.writeFile(`${out}/kernel-params`, spec.boot.kernelParams.join(" "));
  fs.writeFile(`${out}/nixos-version`, spec.nixosVersion);
  fs.writeFile(`${out}/configuration-name`, spec.configurationName);
  fs.writeFile(`${out}/system`, spec.system);
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  fs.writeFile(
    `${out}/activate`,
    script([
      `# Activates this system generation on the running machine (or on TSNIX_ROOT).`,
      `systemConfig=${q(out)}`,
      `exec tsnix os activate --system "$systemConfig" --root "\${TSNIX_ROOT:-/}"`,
    ]),
    { mode: 0o755 },
  );
  fs.writeFile(
    `${out}/init`,
    script([`# Stage 2: activate, then hand over to systemd.`, `${q(`${out}/activate`)}`, `exec /run/current-system/sw/lib/systemd/systemd "$@"`]),
    { mode: 0o755 },
  );
  fs.writeFile(
    `${out}/bin/switch-to-configuration`,
    script([`# usage: switch-to-configuration switch|boot|test|dry-activate`, `exec tsnix os switch-to-configuration --system ${q(out)} --root "\${TSNIX_ROOT:-/}" "$@"`]),
    { mode: 0o755 },
  );
  // NixOS's bootspec lists each specialisation's own bootspec (read from its top level, an input of this one).
  const children: Record<string, unknown> = {};
  for (const [name, path] of Object.entries(spec.specialisations ?? {}).sort(([a], [b]) => (a < b ? -1 : 1))) {
    const child = JSON.parse(new TextDecoder().decode(fs.readFile(`${path}/boot.json`))) as Record<string, unknown>;
    children[name] = child["org.nixos.bootspec.v1"];
  }
  const bootspec = {
    "org.nixos.bootspec.v1": {
      system: spec.system,
      init: `${out}/init`,
      ...(spec.boot.initrd === null ? {} : { initrd: spec.boot.initrd }),
      ...(spec.boot.kernel === null ? {} : { kernel: spec.boot.kernel }),
      kernelParams: spec.boot.kernelParams,
      label: `NixOS ${spec.label}${spec.boot.kernelVersion === null ? "" : ` (Linux ${spec.boot.kernelVersion})`}`,
      toplevel: out,
    },
    "org.nixos.specialisation.v1": children,
  };
  fs.writeFile(`${out}/boot.json`, `${JSON.stringify(bootspec, null, 2)}\n`);
  // As NixOS: the directory is there even when empty.
  mkdirp(fs, `${out}/specialisation`);
  for (const [name, path] of Object.entries(spec.specialisations ?? {}).sort(([a], [b]) => (a < b ? -1 : 1))) fs.symlink(path, `${out}/specialisation/${name}`);
  fs.writeFile(`${out}/tsnix-system.json`, `${JSON.stringify(spec, null, 1)}\n`);
}

/** The "tsnix:os" builder. @public */
export const osBuilder: JsBuilder = (ctx: JsBuilderContext) => {
  const env = ctx.env;
  const out = need(env, "out");
  const fs = ctx.fs;
  switch (need(env, "op")) {
    case "write-text":
      fs.writeFile(out, need(env, "text"), { mode: 0o644 });
      return 0;
    case "write-script":
      fs.writeFile(out, need(env, "text"), { mode: 0o755 });
      return 0;
    case "etc":
      buildEtc(fs, out, JSON.parse(need(env, "entries")) as EtcEntry[]);
      return 0;
    case "toplevel":
      buildToplevel(fs, out, JSON.parse(need(env, "spec")) as SystemSpec);
      return 0;
    default:
      ctx.log(`tsnix:os builder: unknown operation '${env["op"]}'`);
      return 1;
  }
};
