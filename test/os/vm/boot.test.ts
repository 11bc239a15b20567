/**
 * The pure parts of the VM: the bubblewrap command line, port-forward
 * specifications, store path resolution for chroot stores, and the VM root's
 * skeleton and /etc (on both hosts).
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { UsageError } from "../../../src/errors.js";
import { mkdirp } from "../../../src/host/util.js";
import { linkEtc, prepareRoot } from "../../../src/os/vm/boot.js";
import { VM_INIT, vmBubblewrapArgs } from "../../../src/os/vm/bubblewrap.js";
import { parseForward } from "../../../src/os/vm/command.js";
import { storePhysicalPath } from "../../../src/os/vm/runner.js";
import { HOSTS } from "../../helpers/hosts.js";

describe("vmBubblewrapArgs", () => {
  const spec = { hostName: "demo", rootDir: "/tmp/r/root", storeDir: "/nix/store", storePhysical: "/home/u/.local/share/tsnix/nix/store", hostRuntime: ["/usr", "/bin"], init: VM_INIT };

  it("unshares every namespace, sets the host name, binds the root writable and the store read-only, passes no host environment", () => {
    const a = vmBubblewrapArgs({ ...spec, userNamespace: false });
    for (const f of ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-net", "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--clearenv"]) expect(a).toContain(f);
    expect(a).not.toContain("--unshare-user");
    const pair = (flag: string) => a.flatMap((x, i) => (x === flag ? [[a[i + 1], a[i + 2]]] : []));
    expect(a[a.indexOf("--hostname") + 1]).toBe("demo");
    expect(pair("--bind")).toEqual([["/tmp/r/root", "/"]]);
    expect(pair("--ro-bind")).toEqual([["/home/u/.local/share/tsnix/nix/store", "/nix/store"]]);
    expect(pair("--ro-bind-try")).toEqual([
      ["/usr", "/usr"],
      ["/bin", "/bin"],
    ]);
    // The root is bound before anything is mounted on it.
    expect(a.indexOf("--bind")).toBeLessThan(a.indexOf("--ro-bind"));
    expect(a.slice(a.indexOf("--") + 1)).toEqual([...VM_INIT]);
  });

  it("maps the caller to root in a user namespace when asked", () => {
    const a = vmBubblewrapArgs({ ...spec, userNamespace: true });
    expect(a.slice(0, 5)).toEqual(["--unshare-user", "--uid", "0", "--gid", "0"]);
  });
});

describe("parseForward", () => {
  it("reads QEMU's hostfwd form", () => {
    expect(parseForward("tcp:127.0.0.1:2222-:22")).toEqual({ from: "host", proto: "tcp", hostAddress: "127.0.0.1", hostPort: 2222, guestAddress: "127.0.0.1", guestPort: 22 });
    expect(parseForward("tcp::8080-10.0.2.15:80")).toMatchObject({ hostAddress: "", hostPort: 8080, guestAddress: "10.0.2.15", guestPort: 80 });
  });

  it("rejects malformed forwards and ports out of range", () => {
    for (const bad of ["2222:22", "tcp:127.0.0.1:2222:22", "sctp::1-:2", "tcp::0-:22", "tcp::70000-:22", "tcp::22-:"]) expect(() => parseForward(bad)).toThrow(UsageError);
  });

  it("round-trips every valid port pair", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 65535 }), fc.integer({ min: 1, max: 65535 }), (h, g) => {
        const f = parseForward(`tcp:127.0.0.1:${h}-:${g}`);
        expect([f.hostPort, f.guestPort]).toEqual([h, g]);
      }),
    );
  });
});

describe.each(HOSTS)("VM root ($name host)", ({ make }) => {
  it("resolves logical store paths through links to their physical place", () => {
    const f = make();
    try {
      const fs = f.host.fs;
      const store = `${f.dir}/s/nix/store`;
      mkdirp(fs, `${store}/aaa-etc/etc/systemd`);
      fs.writeFile(`${store}/aaa-etc/etc/systemd/x.service`, "x");
      mkdirp(fs, `${store}/bbb-system`);
      fs.symlink("/nix/store/aaa-etc/etc", `${store}/bbb-system/etc`);
      fs.symlink("../aaa-etc", `${store}/bbb-system/rel`);
      const phys = (p: string) => storePhysicalPath(f.host, p, "/nix/store", store);
      expect(phys("/nix/store/bbb-system/etc/systemd/x.service")).toBe(`${store}/aaa-etc/etc/systemd/x.service`);
      expect(phys("/nix/store/bbb-system/rel/etc/systemd")).toBe(`${store}/aaa-etc/etc/systemd`);
      // A missing path keeps its remaining components.
      expect(phys("/nix/store/bbb-system/etc/none/y")).toBe(`${store}/aaa-etc/etc/none/y`);
      fs.symlink("/nix/store/bbb-system/loop", `${store}/bbb-system/loop`);
      expect(() => phys("/nix/store/bbb-system/loop/x")).toThrow(/too many levels of symbolic links/);
    } finally {
      f.dispose();
    }
  });

  it("prepares the root skeleton, clears /run, installs /etc through /etc/static and prunes links of an older generation", () => {
    const f = make();
    try {
      const fs = f.host.fs;
      const root = `${f.dir}/root`;
      const etc1 = `${f.dir}/gen1/etc`;
      mkdirp(fs, `${etc1}/ssh`);
      fs.writeFile(`${etc1}/hostname`, "one\n");
      fs.writeFile(`${etc1}/ssh/sshd_config`, "Port 22\n");
      fs.writeFile(`${etc1}/old-only`, "x");
      mkdirp(fs, root);
      prepareRoot(fs, root, "/nix/store/gen1");
      mkdirp(fs, `${root}/run/stale`);
      prepareRoot(fs, root, "/nix/store/gen1");
      expect(fs.readdir(`${root}/run`).sort()).toEqual(["booted-system", "current-system"]);
      expect(fs.readlink(`${root}/run/current-system`)).toBe("/nix/store/gen1");
      expect(fs.stat(`${root}/tmp`).mode & 0o7777).toBe(0o1777);
      expect(fs.stat(`${root}/root`).mode & 0o777).toBe(0o700);

      linkEtc(fs, root, "/nix/store/gen1", etc1);
      expect(fs.readlink(`${root}/etc/static`)).toBe("/nix/store/gen1/etc");
      expect(fs.readlink(`${root}/etc/hostname`)).toBe("/etc/static/hostname");
      expect(fs.lstat(`${root}/etc/ssh`).type).toBe("directory");
      expect(fs.readlink(`${root}/etc/ssh/sshd_config`)).toBe("/etc/static/ssh/sshd_config");
      // Files the system made itself beside the links stay.
      fs.writeFile(`${root}/etc/ssh/ssh_host_ed25519_key`, "key");

      const etc2 = `${f.dir}/gen2/etc`;
      mkdirp(fs, `${etc2}/ssh`);
      fs.writeFile(`${etc2}/hostname`, "two\n");
      fs.writeFile(`${etc2}/ssh/sshd_config`, "Port 2222\n");
      linkEtc(fs, root, "/nix/store/gen2", etc2);
      expect(fs.readlink(`${root}/etc/static`)).toBe("/nix/store/gen2/etc");
      expect(fs.readdir(`${root}/etc`).sort()).toEqual(["hostname", "ssh", "static"]);
      expect(fs.readdir(`${root}/etc/ssh`).sort()).toEqual(["ssh_host_ed25519_key", "sshd_config"]);
    } finally {
      f.dispose();
    }
  });
});
