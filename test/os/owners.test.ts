/**
 * Owners on a target root: /etc copies get the `user`/`group` (or
 * `uid`/`gid`) of their entry, resolved through the target's new
 * /etc/passwd and /etc/group; homes get their user's uid, primary gid and
 * homeMode. Run on both hosts: memfs reports the owners the memory host
 * recorded; the node host sets real owners (CI runs as root; as another
 * user the switch must warn once and still succeed).
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { HostError } from "../../src/errors.js";
import type { Host } from "../../src/host/host.js";
import { memoryHost } from "../../src/host/memory-host.js";
import { Owners } from "../../src/os/owners.js";
import { readSystemSpec } from "../../src/os/bootloader.js";
import { rebuild } from "../../src/os/system.js";
import { HOSTS, type HostFixture } from "../helpers/hosts.js";
import { PKGS_NIX, osContext, readInRoot } from "./helpers.js";

const conf = (secretUser: string) => `{ pkgs, ... }: {
  boot.loader.grub.device = "nodev";
  users.users.alice.isNormalUser = true;
  users.users.bob = { isNormalUser = true; homeMode = "750"; };
  users.users.svc = { isSystemUser = true; group = "svc"; home = "/var/lib/svc"; createHome = true; };
  users.groups.svc = { };
  users.groups.staff.gid = 2345;
  environment.etc."secret" = { text = "s3cret\\n"; mode = "0640"; user = "${secretUser}"; group = "staff"; };
  environment.etc."byid" = { text = "by id\\n"; mode = "0600"; uid = 1234; gid = 5678; };
  environment.etc."ghost" = { text = "nobody home\\n"; mode = "0600"; user = "ghost"; };
  environment.etc."linked".text = "a link\\n";
  environment.etc."direct" = { text = "direct\\n"; mode = "direct-symlink"; };
}`;

/** Ids by name from a passwd or group text. */
function ids(text: string | undefined): Map<string, { id: number; gid: number }> {
  return new Map(
    (text ?? "")
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => {
        const f = l.split(":");
        return [f[0]!, { id: Number(f[2]), gid: Number(f[3]) }] as const;
      }),
  );
}

function owner(host: Host, p: string): [number, number, number] {
  const st = host.fs.lstat(p);
  return [st.uid, st.gid, st.mode & 0o7777];
}

describe.each(HOSTS)("owners on the $name host", ({ name, make }) => {
  let fx: HostFixture;
  beforeEach(() => {
    fx = make();
  });
  afterEach(() => fx.dispose());

  it("gives /etc copies and homes their configured owners, and follows a change of owner", async () => {
    const { host, dir } = fx;
    const privileged = name === "memory" || host.user().uid === 0;
    host.fs.writeFile(`${dir}/pkgs.nix`, PKGS_NIX);
    const root = `${dir}/root`;
    const ctx = osContext(host, root);
    const input = (text: string) => {
      host.fs.writeFile(`${dir}/configuration.nix`, text);
      return { configuration: `${dir}/configuration.nix`, pkgs: `${dir}/pkgs.nix` };
    };
    const r1 = await rebuild(ctx, "switch", { input: input(conf("alice")) });

    // The etc tree carries NixOS's side files: mode, and the user/group as given (names, or +id).
    const etcTree = ctx.store.toRealPath(readSystemSpec(host, ctx.store, r1.toplevel).etc);
    const side = (f: string) => new TextDecoder().decode(host.fs.readFile(`${etcTree}/${f}`));
    expect([side("secret.mode"), side("secret.uid"), side("secret.gid")]).toEqual(["0640\n", "alice\n", "staff\n"]);
    expect([side("byid.uid"), side("byid.gid")]).toEqual(["+1234\n", "+5678\n"]);
    expect([side("direct.mode"), side("direct.uid"), side("direct.gid")]).toEqual(["direct-symlink\n", "+0\n", "+0\n"]);

    const users = ids(readInRoot(host, root, "/etc/passwd"));
    const groups = ids(readInRoot(host, root, "/etc/group"));
    expect(groups.get("staff")!.id).toBe(2345);
    const warnings = ctx.lines.filter((l) => l.startsWith("warning:"));
    expect(warnings).toContain(`warning: /etc/ghost: user 'ghost' does not exist in ${root}/etc/passwd; using 0 (root)`);
    for (const f of ["secret", "byid", "ghost", "linked"]) expect(readInRoot(host, root, `/etc/${f}`)).toMatch(/\n$/);
    expect(host.fs.lstat(`${root}/etc/linked`).type).toBe("symlink");
    // A direct-symlink entry links straight into the store, not through /etc/static.
    expect(host.fs.readlink(`${root}/etc/direct`)).toBe(host.fs.readlink(`${etcTree}/direct`));
    expect(readInRoot(host, root, "/etc/direct")).toBe("direct\n");
    // setup-etc.pl's tag.
    expect(readInRoot(host, root, "/etc/NIXOS")).toBe("");
    if (!privileged) {
      expect(warnings.filter((w) => w.includes("cannot change the owner"))).toHaveLength(1);
      return;
    }
    expect(warnings.filter((w) => w.includes("cannot change the owner"))).toEqual([]);
    expect(owner(host, `${root}/etc/secret`)).toEqual([users.get("alice")!.id, 2345, 0o640]);
    expect(owner(host, `${root}/etc/byid`)).toEqual([1234, 5678, 0o600]);
    expect(owner(host, `${root}/etc/ghost`)).toEqual([0, 0, 0o600]);
    const alice = users.get("alice")!;
    const bob = users.get("bob")!;
    const svc = users.get("svc")!;
    expect(alice.gid).toBe(100);
    expect(owner(host, `${root}/home/alice`)).toEqual([alice.id, 100, 0o700]);
    expect(owner(host, `${root}/home/bob`)).toEqual([bob.id, 100, 0o750]);
    expect(owner(host, `${root}/var/lib/svc`)).toEqual([svc.id, groups.get("svc")!.id, 0o700]);
    expect(host.fs.readdir(`${root}/home`).sort()).toEqual(["alice", "bob"]);

    // Same content, another owner: the file is given to bob; a home changed by hand is put back.
    host.fs.chmod(`${root}/home/alice`, 0o755);
    host.fs.chown!(`${root}/home/alice`, 0, 0);
    ctx.lines.length = 0;
    await rebuild(ctx, "switch", { input: input(conf("bob")) });
    expect(owner(host, `${root}/etc/secret`)).toEqual([bob.id, 2345, 0o640]);
    expect(readInRoot(host, root, "/etc/secret")).toBe("s3cret\n");
    expect(owner(host, `${root}/home/alice`)).toEqual([alice.id, 100, 0o700]);
    // Nothing left behind by the replacements.
    expect(host.fs.readdir(`${root}/etc`).filter((n) => n.includes("tmp"))).toEqual([]);
  });
});

describe("a host that refuses chown (an unprivileged --root)", () => {
  it("warns once and completes the switch with every file otherwise right", async () => {
    const base = memoryHost({ files: { "/cfg/pkgs.nix": PKGS_NIX, "/cfg/configuration.nix": conf("alice") } });
    const refusing: Host = {
      ...base,
      fs: {
        ...base.fs,
        chown: (p) => {
          throw new HostError("EPERM", "chown", p);
        },
      },
    };
    const ctx = osContext(refusing, "/target");
    await rebuild(ctx, "switch", { input: { configuration: "/cfg/configuration.nix", pkgs: "/cfg/pkgs.nix" } });
    const refused = ctx.lines.filter((l) => l.includes("cannot change the owner"));
    expect(refused).toEqual([
      "warning: cannot change the owner of files under '/target' (operation not permitted); they keep user's ids (1000:100). Activate as root to apply the configured owners.",
    ]);
    expect(readInRoot(refusing, "/target", "/etc/secret")).toBe("s3cret\n");
    expect(refusing.fs.stat("/target/etc/secret").mode & 0o7777).toBe(0o640);
    expect(refusing.fs.stat("/target/home/bob").mode & 0o7777).toBe(0o750);
    expect(refusing.fs.stat("/target/home/alice").type).toBe("directory");
  });
});

describe("Owners", () => {
  it("reads +N as an id and names through the root's passwd and group", () => {
    const host = memoryHost({ files: { "/r/etc/passwd": "root:x:0:0::/root:/bin/sh\nalice:x:1000:100::/home/alice:/bin/sh\n", "/r/etc/group": "root:x:0:\nusers:x:100:\n" } });
    const warned: string[] = [];
    const o = new Owners(host, "/r", (l) => warned.push(l));
    expect(o.uid("+42", "/etc/x")).toBe(42);
    expect(o.uid("alice", "/etc/x")).toBe(1000);
    expect(o.gid("users", "/etc/x")).toBe(100);
    expect(o.gid("+0", "/etc/x")).toBe(0);
    expect(o.uid("carol", "/etc/x")).toBe(0);
    expect(o.gid("+x", "/etc/y")).toBe(0);
    expect(warned).toEqual(["warning: /etc/x: user 'carol' does not exist in /r/etc/passwd; using 0 (root)", "warning: /etc/y: group id '+x' is not a number; using 0 (root)"]);
  });
});

describe("dry activation", () => {
  it("reports a copy whose owner changes as changed", async () => {
    const host = memoryHost({ files: { "/cfg/pkgs.nix": PKGS_NIX, "/cfg/configuration.nix": conf("alice") } });
    const ctx = osContext(host, "/target");
    const input = { configuration: "/cfg/configuration.nix", pkgs: "/cfg/pkgs.nix" };
    await rebuild(ctx, "switch", { input });
    host.fs.writeFile("/cfg/configuration.nix", conf("bob"));
    ctx.lines.length = 0;
    await rebuild(ctx, "dry-activate", { input });
    expect(ctx.lines.filter((l) => l.startsWith("would change /etc/"))).toEqual(["would change /etc/secret"]);
  });
});
