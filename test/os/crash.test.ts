/**
 * Fault injection: a switch from generation 1 to 2 is interrupted after
 * every filesystem call in turn (memfs), and what an observer of the root
 * sees is checked against what the module comments of src/os/activate.ts,
 * etc.ts and system.ts promise:
 *
 * - Each observed item (the profile link, the boot menu, /etc/group,
 *   /etc/passwd, /etc/shadow, a new home directory with its owner and
 *   mode, /etc/static, every managed /etc entry with owner and mode for
 *   copies, /run/current-system) is at every instant exactly generation
 *   1's or generation 2's, never torn, missing or half-owned.
 * - They change in the documented order (below), never out of it: no item
 *   is still old while a later one is already new. The linked /etc
 *   entries change together, with /etc/static.
 * - Without the journal (/var/lib/tsnix/activating) the root is wholly
 *   generation 1 or wholly generation 2: the journal is written before the
 *   first change and removed after the last.
 * - The next run completes the interrupted one: with the journal present,
 *   completing it (which every switch does first) gives exactly the root,
 *   running units and bookkeeping of an uninterrupted run, with no
 *   temporary left in /etc, /home, /var/lib, /run or /boot; without it,
 *   the root is wholly old (run the command again) or wholly new. A
 *   rollback as the next run (sampled) first completes the switch, then
 *   goes back, as after an uninterrupted switch and rollback.
 *
 * Two operations are interrupted so: the switch from generation 1 to 2,
 * and `switch --rollback` from generation 2 back to 1 (a profile switch).
 *
 * What cannot change as a group is reported by the order: the profile and
 * the boot menu come before activation; group, passwd and shadow are three
 * renames; each copied /etc file is its own rename after the /etc/static
 * swap; an old copy is removed after the new copies are in place.
 */
import { describe, expect, it } from "vitest";
import { HostError, SimulatedCrash } from "../../src/errors.js";
import { faultHost } from "../../src/host/fault-host.js";
import type { Host } from "../../src/host/host.js";
import { memoryHost, type MemoryHost } from "../../src/host/memory-host.js";
import { activationJournal } from "../../src/os/activate.js";
import { RecordingServiceManager } from "../../src/os/services.js";
import { completeInterruptedSwitch, rebuild, switchSystem, systemProfile, type OsContext } from "../../src/os/system.js";
import { LocalStore } from "../../src/store/local-store.js";
import { PKGS_NIX, osContext, readInRoot } from "./helpers.js";

const ROOT = "/target";
const conf = (v: 1 | 2) => `{ pkgs, ... }: {
  boot.loader.grub.device = "nodev";
  services.openssh.enable = true;
  services.openssh.ports = [ ${v === 1 ? 22 : 2222} ];
  systemd.services.steady = { wantedBy = [ "multi-user.target" ]; script = "sleep infinity # v${v}"; };
  users.users.alice.isNormalUser = true;
  ${v === 1 ? "users.users.bob.isNormalUser = true;" : "users.users.carol = { isNormalUser = true; homeMode = \"750\"; };"}
  ${v === 1 ? "users.groups.old = { };" : "users.groups.staff = { };"}
  environment.etc.motd.text = "v${v}";
  environment.etc.${v === 1 ? '"only-v1"' : '"only-v2"'}.text = "only in ${v}";
  environment.etc.conf = { text = "conf ${v}"; mode = "${v === 1 ? "0644" : "0640"}"; user = "${v === 1 ? "root" : "alice"}"; group = "${v === 1 ? "root" : "staff"}"; };
  ${v === 1 ? 'environment.etc.oldcopy = { text = "old copy"; mode = "0600"; };' : 'environment.etc.secret = { text = "s"; mode = "0600"; user = "carol"; };'}
  environment.systemPackages = [ ${v === 1 ? "pkgs.hello" : "pkgs.cowsay"} ];
}`;

/** A copy of a memory host's whole file system (symlinks, modes, owners and mtimes kept). */
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
      dst.fs.lchown!(path, st.uid, st.gid);
    }
  };
  walk("");
  return dst;
}

function link(host: Host, p: string): string | null {
  try {
    return host.fs.readlink(`${ROOT}${p}`);
  } catch {
    return null;
  }
}

function owned(host: Host, p: string): string | null {
  try {
    const st = host.fs.lstat(`${ROOT}${p}`);
    return `${st.type} ${st.uid}:${st.gid} ${(st.mode & 0o7777).toString(8)}`;
  } catch {
    return null;
  }
}

/**
 * What a user of the target sees, item by item, in the order a switch
 * changes them. Linked /etc entries are one item with /etc/static.
 */
function observe(host: Host): [string, unknown][] {
  const read = (p: string) => readInRoot(host, ROOT, p) ?? null;
  const copy = (p: string) => ({ content: read(p), owner: owned(host, p) });
  const profile = link(host, systemProfile(""));
  return [
    ["profile", profile === null ? null : link(host, `/nix/var/nix/profiles/${profile}`)],
    ["boot menu", read("/boot/grub/grub.cfg")],
    ["group", read("/etc/group")],
    ["passwd", read("/etc/passwd")],
    ["shadow", read("/etc/shadow")],
    ["homes", { alice: owned(host, "/home/alice"), bob: owned(host, "/home/bob"), carol: owned(host, "/home/carol") }],
    [
      "/etc/static and linked entries",
      {
        static: link(host, "/etc/static"),
        motd: read("/etc/motd"),
        sshd: read("/etc/ssh/sshd_config"),
        onlyV1: read("/etc/only-v1"),
        onlyV2: read("/etc/only-v2"),
        unit: read("/etc/systemd/system/steady.service"),
      },
    ],
    ["/etc/conf (copy)", copy("/etc/conf")],
    ["/etc/secret (copy)", copy("/etc/secret")],
    ["/etc/oldcopy (copy)", copy("/etc/oldcopy")],
    ["current system", link(host, "/run/current-system")],
  ];
}

/** Bookkeeping that must also converge (not part of what a user sees). */
function bookkeeping(host: Host) {
  const read = (p: string) => readInRoot(host, ROOT, p) ?? null;
  return ["/etc/.clean", "/var/lib/nixos/uid-map", "/var/lib/nixos/gid-map", "/var/lib/nixos/declarative-users", "/var/lib/nixos/declarative-groups"].map((p) => [p, read(p)]);
}

/** Names of temporaries left anywhere outside the store and the profiles. */
function temporaries(host: Host): string[] {
  const out: string[] = [];
  const walk = (p: string) => {
    let names: string[];
    try {
      names = host.fs.readdir(p);
    } catch {
      return;
    }
    for (const n of names) {
      const q = `${p}/${n}`;
      if (/tsnix-tmp|\.tmp-|\.tmp$/.test(n)) out.push(q);
      if (host.fs.lstat(q).type === "directory") walk(q);
    }
  };
  for (const d of ["/etc", "/home", "/var/lib", "/run", "/boot"]) walk(`${ROOT}${d}`);
  return out;
}

function journalPresent(host: Host): boolean {
  try {
    host.fs.lstat(activationJournal(ROOT));
    return true;
  } catch {
    return false;
  }
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

type Scenario = {
  /** Items whose value is the same before and after (no information there). */
  readonly unchanged: readonly string[];
  /**
   * The order the items change in, when it is not observe()'s: copies are
   * written in path order and old copies removed after them, so which of
   * two copies goes first depends on which one is added.
   */
  readonly order?: readonly string[];
  readonly run: (ctx: OsContext) => Promise<unknown>;
};

const clock = () => 1_700_000_000_000;
const contextOn = (h: Host, sm: RecordingServiceManager) => osContext(h, ROOT, { store: new LocalStore({ host: h, root: ROOT, fsyncStorePaths: false }), serviceManager: sm });

/** Interrupt `scenario.run` on a copy of `base` after each filesystem call in turn and check what the module comments promise. */
async function interruptEverywhere(name: string, base: MemoryHost, running: readonly string[], scenario: Scenario, afterwards?: (clone: MemoryHost, active: Set<string>, at: string) => Promise<void>) {
  const before = observe(base);
  const ref = cloneHost(base, clock);
  const refSm = new RecordingServiceManager(running);
  await scenario.run(contextOn(ref, refSm));
  const after = observe(ref);
  const afterBooks = bookkeeping(ref);
  expect(temporaries(ref)).toEqual([]);
  // Every item but the declared unchanged ones differs, so each interruption point is informative.
  expect(before.filter(([n, v], i) => same(v, after[i]![1])).map(([n]) => n)).toEqual(scenario.unchanged);

  let k = 1;
  const outcomes = { old: 0, new: 0, journal: 0 };
  const firstNew = new Map<string, number>();
  let skipped = 0;
  for (;; k++) {
    const clone = cloneHost(base, clock);
    const fh = faultHost(clone, { crashAfter: k });
    const sm = new RecordingServiceManager(running);
    let crashed = false;
    try {
      await scenario.run(contextOn(fh, sm));
    } catch (e) {
      if (!(e instanceof SimulatedCrash)) throw new Error(`${name}, call ${k}: ${(e as Error).message}`);
      crashed = true;
    }
    if (!crashed) {
      // The k-th call failed by itself (e.g. unlinking a missing temporary), so no crash was injected; past the last call we are done.
      if (k > fh.calls) break;
      skipped++;
      continue;
    }
    const at = `${name}, after call ${k} (${fh.log[fh.log.length - 1]})`;
    const seen = observe(clone);
    const state = seen.map(([item, v], i) => {
      const isOld = same(v, before[i]![1]);
      const isNew = same(v, after[i]![1]);
      expect(isOld || isNew, `${item} ${at}: neither generation's: ${JSON.stringify(v)}`).toBe(true);
      return [item, isNew && !isOld ? "new" : isOld && !isNew ? "old" : "same"] as const;
    });
    const rank = (item: string) => (scenario.order ?? before.map(([n]) => n)).indexOf(item);
    const marks = [...state].sort(([a], [b]) => rank(a) - rank(b)).map(([, st]) => st);
    const lastNew = marks.lastIndexOf("new");
    const firstOld = marks.indexOf("old");
    expect(firstOld === -1 || lastNew === -1 || lastNew < firstOld, `order ${at}: ${state.map(([n, st]) => `${n}=${st}`).join(", ")}`).toBe(true);
    for (const [item, st] of state) if (st === "new" && !firstNew.has(item)) firstNew.set(item, k);
    const journal = journalPresent(clone);
    if (journal) outcomes.journal++;
    else {
      expect(firstOld === -1 || lastNew === -1, `without the journal the root is wholly one generation ${at}`).toBe(true);
      if (lastNew === -1) outcomes.old++;
      else outcomes.new++;
    }

    // The process died: its locks are stale. The next run completes the job.
    const next = clone.fork();
    clone.exitProcess(clone.pid);
    const nextSm = new RecordingServiceManager(sm.active);
    const nextCtx = contextOn(next, nextSm);
    if (journal) expect(await completeInterruptedSwitch(nextCtx), at).not.toBeNull();
    else if (lastNew === -1) await scenario.run(nextCtx);
    expect(observe(next), `recovery ${at}`).toEqual(after);
    expect(bookkeeping(next), `bookkeeping after recovery ${at}`).toEqual(afterBooks);
    expect([...nextSm.active].sort(), `running units after recovery ${at}`).toEqual([...refSm.active].sort());
    expect(journalPresent(next)).toBe(false);
    expect(temporaries(next), `temporaries after recovery ${at}`).toEqual([]);
    if (afterwards !== undefined && k % 9 === 0) await afterwards(clone, sm.active, at);
  }
  expect(k).toBeGreaterThan(40);
  expect(outcomes.old).toBeGreaterThan(0);
  expect(outcomes.new).toBeGreaterThan(0);
  expect(outcomes.journal).toBeGreaterThan(0);
  // Each changing item turned new at some interruption point, in the documented order.
  const order = (scenario.order ?? before.map(([n]) => n)).filter((n) => !scenario.unchanged.includes(n));
  const turned = order.map((n) => firstNew.get(n) ?? Infinity);
  expect(turned.every((x) => x !== Infinity), JSON.stringify(Object.fromEntries(firstNew))).toBe(true);
  expect([...turned].sort((a, b) => a - b)).toEqual(turned);
  console.log(`${name}: ${k - 1} filesystem calls, ${k - 1 - skipped} interruption points`, outcomes, Object.fromEntries(firstNew));
  return { refSm, ref };
}

describe("interrupted at every filesystem call (memfs)", () => {
  it("a switch and a rollback show each item old or new, in the documented order, wholly one generation without the journal, and are completed by the next run", async () => {
    const base = memoryHost({ files: { "/cfg/pkgs.nix": PKGS_NIX, "/cfg/v1.nix": conf(1), "/cfg/v2.nix": conf(2) }, now: clock });
    const ctx = osContext(base, ROOT);
    const input = (v: number) => ({ configuration: `/cfg/v${v}.nix`, pkgs: "/cfg/pkgs.nix" });
    await rebuild(ctx, "switch", { input: input(1) });
    const v2 = await rebuild(ctx, "build", { input: input(2), resultLink: null });
    const running = [...ctx.serviceManager.active];
    expect(running).toEqual(expect.arrayContaining(["sshd.service", "steady.service"]));

    // The rollback reference: switch to 2, then back.
    const switched = cloneHost(base, clock);
    const switchedSm = new RecordingServiceManager(running);
    await switchSystem(contextOn(switched, switchedSm), v2.toplevel, "switch");
    const back = cloneHost(switched, clock);
    await rebuild(contextOn(back, new RecordingServiceManager(switchedSm.active)), "switch", { rollback: true });
    const backSeen = observe(back);

    const { refSm } = await interruptEverywhere("switch", base, running, { unchanged: [], run: (c) => switchSystem(c, v2.toplevel, "switch") }, async (clone, active, at) => {
      // A rollback as the next run: the interrupted switch is completed first, then undone.
      const other = cloneHost(clone, clock);
      await rebuild(contextOn(other, new RecordingServiceManager(active)), "switch", { rollback: true });
      expect(observe(other), `rollback as the next run ${at}`).toEqual(backSeen);
    });
    // steady is stopped before activation and started after it (stopIfChanged), sshd restarted after it (stopIfChanged = false).
    expect(refSm.log).toEqual(["stop steady.service", "daemon-reload", "restart sshd.service", "start steady.service"]);

    // A rollback from generation 2 to 1 (homes are never removed, so that item does not change).
    const items = observe(base).map(([n]) => n);
    const order = [...items.filter((n) => n !== "/etc/secret (copy)" && n !== "current system"), "/etc/secret (copy)", "current system"];
    await interruptEverywhere("rollback", switched, [...switchedSm.active], { unchanged: ["homes"], order, run: (c) => rebuild(c, "switch", { rollback: true }) });
  }, 900000);

  it("a switch whose k-th filesystem call fails (EIO) reports the host error, leaves each item old or new, and the next switch completes it", async () => {
    const base = memoryHost({ files: { "/cfg/pkgs.nix": PKGS_NIX, "/cfg/v1.nix": conf(1), "/cfg/v2.nix": conf(2) }, now: clock });
    const ctx = osContext(base, ROOT);
    await rebuild(ctx, "switch", { input: { configuration: "/cfg/v1.nix", pkgs: "/cfg/pkgs.nix" } });
    const v2 = await rebuild(ctx, "build", { input: { configuration: "/cfg/v2.nix", pkgs: "/cfg/pkgs.nix" }, resultLink: null });
    const running = [...ctx.serviceManager.active];
    const before = observe(base);
    const ref = cloneHost(base, clock);
    await switchSystem(contextOn(ref, new RecordingServiceManager(running)), v2.toplevel, "switch");
    const after = observe(ref);
    let failures = 0;
    for (let k = 1; ; k++) {
      const clone = cloneHost(base, clock);
      const fh = faultHost(clone, { failAt: k, errno: "EIO" });
      const sm = new RecordingServiceManager(running);
      let err: unknown;
      try {
        await switchSystem(contextOn(fh, sm), v2.toplevel, "switch");
      } catch (e) {
        err = e;
      }
      if (err === undefined) {
        if (k > fh.calls) break;
        continue; // the failed call was one whose failure is expected and handled (a missing temporary)
      }
      failures++;
      const at = `EIO at call ${k} (${fh.log[fh.log.length - 1]})`;
      expect(err, at).toBeInstanceOf(HostError);
      expect((err as HostError).errno, at).toBe("EIO");
      observe(clone).forEach(([item, v], i) => expect(same(v, before[i]![1]) || same(v, after[i]![1]), `${item} ${at}`).toBe(true));
      // The same process tries again (its lock was released on the way out).
      await switchSystem(contextOn(clone, new RecordingServiceManager(sm.active)), v2.toplevel, "switch");
      expect(observe(clone), `next switch after ${at}`).toEqual(after);
      expect(journalPresent(clone)).toBe(false);
      expect(temporaries(clone), `temporaries after ${at}`).toEqual([]);
    }
    expect(failures).toBeGreaterThan(100);
  }, 900000);
});
