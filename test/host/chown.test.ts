/**
 * chown/lchown on both hosts: the owner a stat reports afterwards, the
 * symlink-or-target distinction, errno for a missing path, and the fault
 * injector counting them as state-changing calls. On the node host the
 * ownership checks need root (CI runs as root); as another user the call
 * must fail with EPERM, which OS activation turns into one warning.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { HostError, SimulatedCrash } from "../../src/errors.js";
import { faultHost } from "../../src/host/fault-host.js";
import { HOSTS, type HostFixture } from "../helpers/hosts.js";

describe.each(HOSTS)("chown on the $name host", ({ name, make }) => {
  let fx: HostFixture;
  beforeEach(() => {
    fx = make();
  });
  afterEach(() => fx.dispose());
  const privileged = () => name === "memory" || fx.host.user().uid === 0;

  it("is present on the host's fs", () => {
    expect(typeof fx.host.fs.chown).toBe("function");
    expect(typeof fx.host.fs.lchown).toBe("function");
  });

  it("sets owner and group as stat then reports them (or EPERM when unprivileged)", () => {
    const f = `${fx.dir}/f`;
    fx.host.fs.writeFile(f, "x");
    if (!privileged()) {
      expect(() => fx.host.fs.chown!(f, 4321, 4322)).toThrow(expect.objectContaining({ errno: "EPERM" }));
      return;
    }
    fx.host.fs.chown!(f, 4321, 4322);
    const st = fx.host.fs.stat(f);
    expect([st.uid, st.gid]).toEqual([4321, 4322]);
    fx.host.fs.mkdir(`${fx.dir}/d`);
    fx.host.fs.chown!(`${fx.dir}/d`, 7, 8);
    expect([fx.host.fs.lstat(`${fx.dir}/d`).uid, fx.host.fs.lstat(`${fx.dir}/d`).gid]).toEqual([7, 8]);
  });

  it("chown follows a final symlink, lchown changes the link itself", () => {
    if (!privileged()) return;
    const f = `${fx.dir}/target`;
    const l = `${fx.dir}/link`;
    fx.host.fs.writeFile(f, "x");
    fx.host.fs.chown!(f, 10, 10);
    fx.host.fs.symlink(f, l);
    fx.host.fs.lchown!(l, 11, 12);
    expect([fx.host.fs.lstat(l).uid, fx.host.fs.lstat(l).gid]).toEqual([11, 12]);
    expect(fx.host.fs.stat(f).uid).toBe(10);
    fx.host.fs.chown!(l, 13, 14);
    expect([fx.host.fs.stat(f).uid, fx.host.fs.stat(f).gid]).toEqual([13, 14]);
    expect(fx.host.fs.lstat(l).uid).toBe(11);
  });

  it("fails with ENOENT as a HostError for a missing path", () => {
    let err: unknown;
    try {
      fx.host.fs.chown!(`${fx.dir}/missing`, 0, 0);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(HostError);
    expect((err as HostError).errno).toBe("ENOENT");
    expect((err as HostError).data["syscall"]).toBe("chown");
  });

  it("is a state-changing call for the fault injector", () => {
    const f = `${fx.dir}/g`;
    fx.host.fs.writeFile(f, "x");
    const fh = faultHost(fx.host, { crashAfter: 1 });
    const uid = fx.host.user().uid;
    expect(() => fh.fs.chown!(f, uid, fx.host.user().gid)).toThrow(SimulatedCrash);
    expect(fh.log).toEqual([`chown ${f}`]);
  });
});
