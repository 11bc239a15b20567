import { describe, expect, it } from "vitest";
import { SandboxInputPool } from "../../src/build/sandbox-inputs.js";
import type { HostFs } from "../../src/host/host.js";
import { HOSTS } from "../helpers/hosts.js";

const h = (c: string) => c.repeat(32);
const NAMES = { file: `${h("a")}-file`, exe: `${h("b")}-exe`, big: `${h("c")}-big`, dir: `${h("d")}-dir`, link: `${h("e")}-link` };
const text = (fs: HostFs, p: string) => new TextDecoder().decode(fs.readFile(p));

/** A physical store with one input of each kind, and a fresh sandbox store directory per build. */
function setup(fs: HostFs, dir: string) {
  const phys = `${dir}/store`;
  fs.mkdir(phys);
  fs.writeFile(`${phys}/${NAMES.file}`, "hello\n");
  fs.writeFile(`${phys}/${NAMES.exe}`, "#!/bin/sh\n");
  fs.writeFile(`${phys}/${NAMES.big}`, new Uint8Array(2000));
  fs.chmod(`${phys}/${NAMES.file}`, 0o444);
  fs.chmod(`${phys}/${NAMES.exe}`, 0o555);
  fs.mkdir(`${phys}/${NAMES.dir}`);
  fs.symlink("/nowhere", `${phys}/${NAMES.link}`);
  const inputs = Object.values(NAMES).map((n) => ({ logical: `/nix/store/${n}`, physical: `${phys}/${n}` }));
  let n = 0;
  const area = () => {
    const a = `${dir}/area-${n++}`;
    fs.mkdir(a);
    return a;
  };
  // Entry by entry, as the realiser removes a build's store directory (memfs's recursive rm keeps link counts).
  const removeArea = (a: string) => {
    for (const n of fs.readdir(a)) fs.unlink(`${a}/${n}`);
    fs.rmdir(a);
  };
  return { phys, inputs, area, removeArea };
}

describe.each(HOSTS)("SandboxInputPool on the $name host", ({ make }) => {
  it("links small files and symlinks with canonical metadata, leaves directories and big files to bind", () => {
    const fx = make();
    try {
      const fs = fx.host.fs;
      const { inputs, area } = setup(fs, fx.dir);
      const pool = new SandboxInputPool(fs, `${fx.dir}/.pool-`, 1000);
      const a = area();
      const staged = pool.stage("/nix/store", a, inputs);
      expect(staged.bind.map((b) => b.logical).sort()).toEqual([`/nix/store/${NAMES.big}`, `/nix/store/${NAMES.dir}`]);
      expect(fs.readdir(a).sort()).toEqual([NAMES.exe, NAMES.file, NAMES.link].sort());
      expect(text(fs, `${a}/${NAMES.file}`)).toBe("hello\n");
      const f = fs.lstat(`${a}/${NAMES.file}`);
      expect([f.mode & 0o7777, Math.round(f.mtimeMs), f.nlink]).toEqual([0o444, 1000, 2]);
      expect(fs.lstat(`${a}/${NAMES.exe}`).mode & 0o7777).toBe(0o555);
      expect(fs.readlink(`${a}/${NAMES.link}`)).toBe("/nowhere");
      pool.dispose();
      expect(fs.readdir(fx.dir).filter((n) => n.startsWith(".pool-"))).toEqual([]);
    } finally {
      fx.dispose();
    }
  });

  it("reuses an untouched copy for the next build, and drops a changed or escaped one", () => {
    const fx = make();
    try {
      const fs = fx.host.fs;
      const { inputs, area, removeArea } = setup(fs, fx.dir);
      const pool = new SandboxInputPool(fs, `${fx.dir}/.pool-`, 1000);
      const a1 = area();
      const s1 = pool.stage("/nix/store", a1, inputs);
      const ino = (a: string, n: string) => fs.lstat(`${a}/${n}`).ino;
      const first = { file: ino(a1, NAMES.file), exe: ino(a1, NAMES.exe) };
      removeArea(a1);
      pool.settle(s1);
      // Untouched: the same inodes again.
      const a2 = area();
      const s2 = pool.stage("/nix/store", a2, inputs);
      expect(ino(a2, NAMES.file)).toBe(first.file);
      expect(ino(a2, NAMES.exe)).toBe(first.exe);
      // The "builder" rewrites one input in place (and restores its metadata) and links another into its output.
      fs.chmod(`${a2}/${NAMES.file}`, 0o644);
      fs.writeFile(`${a2}/${NAMES.file}`, "evil!\n");
      fs.chmod(`${a2}/${NAMES.file}`, 0o444);
      fs.utimes(`${a2}/${NAMES.file}`, 1, 1);
      fs.link(`${a2}/${NAMES.exe}`, `${fx.dir}/escaped-output`);
      removeArea(a2);
      pool.settle(s2);
      const a3 = area();
      pool.stage("/nix/store", a3, inputs);
      expect(text(fs, `${a3}/${NAMES.file}`)).toBe("hello\n");
      // The escaped inode is no longer the pool's (a fresh copy is): changing it later changes no build's input.
      expect(fs.lstat(`${fx.dir}/escaped-output`).nlink).toBe(1);
      expect(fs.lstat(`${a3}/${NAMES.exe}`).nlink).toBe(2);
      expect(ino(a3, NAMES.exe)).not.toBe(fs.lstat(`${fx.dir}/escaped-output`).ino);
      expect(text(fs, `${a3}/${NAMES.exe}`)).toBe("#!/bin/sh\n");
      pool.dispose();
    } finally {
      fx.dispose();
    }
  });

  it("an input whose copy cannot be linked is copied privately", () => {
    const fx = make();
    try {
      const fs = fx.host.fs;
      const { inputs, area } = setup(fs, fx.dir);
      const failing: HostFs = { ...fs, link: () => { throw Object.assign(new Error("EXDEV"), { code: "EXDEV" }); } };
      const pool = new SandboxInputPool(failing, `${fx.dir}/.pool-`, 1000);
      const a = area();
      const staged = pool.stage("/nix/store", a, inputs);
      expect(staged.linked).toEqual([]);
      expect(text(fs, `${a}/${NAMES.file}`)).toBe("hello\n");
      expect(fs.lstat(`${a}/${NAMES.file}`).nlink).toBe(1);
      expect(fs.readlink(`${a}/${NAMES.link}`)).toBe("/nowhere");
      pool.dispose();
    } finally {
      fx.dispose();
    }
  });
});
