import type { JsBuilder } from "../../src/build/realise.js";
import type { Host } from "../../src/host/host.js";
import { mkdirp } from "../../src/host/util.js";
import { RecordingServiceManager } from "../../src/os/services.js";
import type { OsContext } from "../../src/os/system.js";
import type { ScriptRunner } from "../../src/os/activate.js";
import { LocalStore } from "../../src/store/local-store.js";

/**
 * A tiny package set for OS tests: each package is a derivation built by the
 * in-process builder "test:pkg" (on any host), so no sandbox is needed.
 */
export const PKGS_NIX = `
let
  mk = name: extra: derivation ({
    inherit name;
    system = "x86_64-linux";
    builder = "test:pkg";
    pname = name;
  } // extra);
in {
  hello = mk "hello-2.12" { };
  cowsay = mk "cowsay-3.04" { };
  openssh = mk "openssh-9.0p1" { };
  linuxPackages.kernel = mk "linux-5.15.50" { kernel = "1"; } // { version = "5.15.50"; };
  initrd = mk "initrd-5.15.50" { isInitrd = "1"; };
}
`;

/** Builds the test packages: bin/<pname>, or a kernel image / initrd file. */
export const testPkgBuilder: JsBuilder = (ctx) => {
  const out = ctx.env["out"]!;
  const name = ctx.env["pname"]!;
  mkdirp(ctx.fs, out);
  if (ctx.env["kernel"] === "1") ctx.fs.writeFile(`${out}/bzImage`, `kernel ${name}\n`);
  else if (ctx.env["isInitrd"] === "1") ctx.fs.writeFile(`${out}/initrd`, `initrd ${name}\n`);
  else {
    mkdirp(ctx.fs, `${out}/bin`);
    const bin = name.replace(/-[0-9].*$/, "");
    ctx.fs.writeFile(`${out}/bin/${bin}`, `#!/bin/sh\necho ${name}\n`, { mode: 0o755 });
    if (bin === "openssh") ctx.fs.writeFile(`${out}/bin/sshd`, `#!/bin/sh\n`, { mode: 0o755 });
  }
  return 0;
};

/** A recording script runner: the names in the order they ran; fails scripts named in `failing`. */
export function recordingRunner(failing: ReadonlySet<string> = new Set()): { runner: ScriptRunner; ran: string[] } {
  const ran: string[] = [];
  return {
    ran,
    runner: async (name) => {
      ran.push(name);
      return failing.has(name) ? { code: 3, output: `${name} broke\n` } : { code: 0, output: "" };
    },
  };
}

/** An OsContext for a target root under `dir` on `host`. */
export function osContext(host: Host, root: string, extra: Partial<OsContext> = {}): OsContext & { serviceManager: RecordingServiceManager; lines: string[] } {
  const lines: string[] = [];
  const store = new LocalStore({ host, root, fsyncStorePaths: false });
  const sm = new RecordingServiceManager();
  return {
    host,
    store,
    root,
    serviceManager: sm,
    builders: { "test:pkg": testPkgBuilder },
    settings: { sandbox: "false" },
    log: (l) => lines.push(l),
    lines,
    scriptRunner: recordingRunner().runner,
    ...extra,
  } as OsContext & { serviceManager: RecordingServiceManager; lines: string[] };
}

/** Resolve a path inside a target root the way the target would (store links into root/nix/store). */
export function resolveInRoot(host: Host, root: string, path: string): string {
  let p = `${root}${path}`;
  for (let i = 0; i < 40; i++) {
    let st;
    try {
      st = host.fs.lstat(p);
    } catch {
      // a missing component may itself be a link further up: resolve parents
      const parts = p.slice(root.length).split("/");
      let prefix = root;
      let changed = false;
      for (let j = 1; j < parts.length; j++) {
        const cand = `${prefix}/${parts[j]}`;
        let s2;
        try {
          s2 = host.fs.lstat(cand);
        } catch {
          return p;
        }
        if (s2.type === "symlink") {
          const t = host.fs.readlink(cand);
          const base = t.startsWith("/") ? `${root}${t}` : `${prefix}/${t}`;
          p = [base, ...parts.slice(j + 1)].join("/");
          changed = true;
          break;
        }
        prefix = cand;
      }
      if (!changed) return p;
      continue;
    }
    if (st.type !== "symlink") return p;
    const t = host.fs.readlink(p);
    p = t.startsWith("/") ? `${root}${t}` : `${p.slice(0, p.lastIndexOf("/"))}/${t}`;
  }
  return p;
}

/** Read a file inside a target root, following links as the target would; undefined when missing. */
export function readInRoot(host: Host, root: string, path: string): string | undefined {
  try {
    return new TextDecoder().decode(host.fs.readFile(resolveInRoot(host, root, path)));
  } catch {
    return undefined;
  }
}
