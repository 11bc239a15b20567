/**
 * Fault injection: a switch from one generation to the next is interrupted
 * after every filesystem call in turn (memfs). After each interruption the
 * root must be fully the old or fully the new generation, or carry the
 * activation journal; and the next switch must complete it to exactly the
 * state an uninterrupted switch gives.
 */
import { describe, expect, it } from "vitest";
import { SimulatedCrash } from "../../src/errors.js";
import { faultHost } from "../../src/host/fault-host.js";
import type { Host } from "../../src/host/host.js";
import { memoryHost, type MemoryHost } from "../../src/host/memory-host.js";
import { activationJournal } from "../../src/os/activate.js";
import { rebuild, switchSystem, systemProfile } from "../../src/os/system.js";
import { LocalStore } from "../../src/store/local-store.js";
import { PKGS_NIX, osContext, readInRoot } from "./helpers.js";

const ROOT = "/target";
const conf = (v: number) => `{ pkgs, ... }: {
  boot.loader.grub.device = "nodev";
  services.openssh.enable = true;
  services.openssh.ports = [ ${v === 1 ? 22 : 2222} ];
  users.users.alice.isNormalUser = true;
  ${v === 1 ? "users.users.bob.isNormalUser = true;" : 'environment.etc.secret = { text = "s"; mode = "0600"; };'}
  environment.etc.motd.text = "v${v}";
  environment.systemPackages = [ ${v === 1 ? "pkgs.hello" : "pkgs.cowsay"} ];
}`;

/** A copy of a memory host's whole file system (symlinks, modes and mtimes kept). */
function cloneHost(src: Host, now: () => number): MemoryHost {
  const dst = memoryHost({ now });
  const walk = (p: string) => {
    for (const name of src.fs.readdir(p === "" ? "/" : p)) {
      const path = `${p}/${name}`;
      if (path === "/tsnix") continue;
      const st = src.fs.lstat(path);
      if (st.type === "directory") {
        dst.fs.mkdir(path, { recursive: true });
        walk(path);
        dst.fs.chmod(path, st.mode & 0o7777);
      } else if (st.type === "symlink") {
        dst.fs.symlink(src.fs.readlink(path), path);
        dst.fs.lutimes(path, st.mtimeMs / 1000, st.mtimeMs / 1000);
      } else {
        dst.fs.writeFile(path, src.fs.readFile(path), { mode: 0o644 });
        dst.fs.chmod(path, st.mode & 0o7777);
      }
    }
  };
  walk("");
  return dst;
}

/** What a user of the target sees: profile, running system, /etc, accounts, boot menu. */
function observe(host: Host, root: string) {
  const files = ["/etc/motd", "/etc/secret", "/etc/ssh/sshd_config", "/etc/passwd", "/etc/group", "/etc/shadow", "/etc/.clean", "/boot/grub/grub.cfg"];
  const profileTarget = (() => {
    try {
      return host.fs.readlink(`${root}/nix/var/nix/profiles/${host.fs.readlink(systemProfile(root)).replace(/^.*\//, "")}`);
    } catch {
      return null;
    }
  })();
  const link = (p: string) => {
    try {
      return host.fs.readlink(`${root}${p}`);
    } catch {
      return null;
    }
  };
  return {
    profile: profileTarget,
    current: link("/run/current-system"),
    etcStatic: link("/etc/static"),
    files: Object.fromEntries(files.map((f) => [f, readInRoot(host, root, f) ?? null])),
  };
}

function journalPresent(host: Host): boolean {
  try {
    host.fs.lstat(activationJournal(ROOT));
    return true;
  } catch {
    return false;
  }
}

describe("switch interrupted at every filesystem call (memfs)", () => {
  it("leaves the old or the new generation, and the next switch completes it", async () => {
    const clock = () => 1_700_000_000_000;
    const base = memoryHost({ files: { "/cfg/pkgs.nix": PKGS_NIX, "/cfg/v1.nix": conf(1), "/cfg/v2.nix": conf(2) }, now: clock });
    const ctx = osContext(base, ROOT);
    const input = (v: number) => ({ configuration: `/cfg/v${v}.nix`, pkgs: "/cfg/pkgs.nix" });
    await rebuild(ctx, "switch", { input: input(1) });
    const v2 = await rebuild(ctx, "build", { input: input(2), resultLink: null });
    const before = observe(base, ROOT);

    // The uninterrupted switch, for reference.
    const ref = cloneHost(base, clock);
    const refCtx = osContext(ref, ROOT, { store: new LocalStore({ host: ref, root: ROOT, fsyncStorePaths: false }) });
    await switchSystem(refCtx, v2.toplevel, "switch");
    const after = observe(ref, ROOT);
    expect(after.files["/etc/motd"]).toBe("v2");
    expect(before.files["/etc/motd"]).toBe("v1");

    let k = 1;
    const outcomes = { old: 0, new: 0, journal: 0 };
    let skipped = 0;
    for (;; k++) {
      const clone = cloneHost(base, clock);
      const fh = faultHost(clone, { crashAfter: k });
      const fctx = osContext(fh, ROOT, { store: new LocalStore({ host: fh, root: ROOT, fsyncStorePaths: false }) });
      let crashed = false;
      try {
        await switchSystem(fctx, v2.toplevel, "switch");
      } catch (e) {
        if (!(e instanceof SimulatedCrash)) throw new Error(`call ${k}: ${(e as Error).message}`);
        crashed = true;
      }
      if (!crashed) {
        // The k-th call failed by itself (e.g. unlinking a missing temporary), so no crash was injected; past the last call we are done.
        if (k > fh.calls) break;
        skipped++;
        continue;
      }
      const seen = observe(clone, ROOT);
      expect([before.profile, after.profile], `profile after call ${k}`).toContain(seen.profile);
      expect([before.etcStatic, after.etcStatic], `/etc/static after call ${k}`).toContain(seen.etcStatic);
      if (journalPresent(clone)) outcomes.journal++;
      else if (JSON.stringify(seen.files) === JSON.stringify({ ...before.files, "/boot/grub/grub.cfg": seen.files["/boot/grub/grub.cfg"] }) && seen.current === before.current) outcomes.old++;
      else {
        expect(seen, `state after call ${k} (${fh.log[fh.log.length - 1]})`).toEqual(after);
        outcomes.new++;
      }
      // The process died: its locks are stale. The next switch completes the job.
      const next = clone.fork();
      clone.exitProcess(clone.pid);
      const nctx = osContext(next, ROOT, { store: new LocalStore({ host: next, root: ROOT, fsyncStorePaths: false }) });
      await switchSystem(nctx, v2.toplevel, "switch");
      expect(observe(next, ROOT), `recovery after call ${k}`).toEqual(after);
      expect(journalPresent(next)).toBe(false);
    }
    expect(k).toBeGreaterThan(20);
    expect(outcomes.old).toBeGreaterThan(0);
    expect(outcomes.journal).toBeGreaterThan(0);
    console.log(`switch: ${k - 1} filesystem calls, ${k - 1 - skipped} interruption points`, outcomes);
  }, 600000);
});
