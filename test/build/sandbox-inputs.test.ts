import { describe, expect, it } from "vitest";
import { POOL_OWNER_UID, SandboxStoreDir } from "../../src/build/sandbox-inputs.js";
import type { HostFs } from "../../src/host/host.js";
import { HOSTS } from "../helpers/hosts.js";

const h = (c: string) => c.repeat(32);
const NAMES = { file: `${h("a")}-file`, exe: `${h("b")}-exe`, big: `${h("c")}-big`, dir: `${h("d")}-dir`, link: `${h("e")}-link` };
const text = (fs: HostFs, p: string) => new TextDecoder().decode(fs.readFile(p));
const isRoot = typeof process.getuid === "function" && process.getuid() === 0;

/** A physical store with one input of each kind. */
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
  const input = (n: string) => ({ logical: `/nix/store/${n}`, physical: `${phys}/${n}` });
  return { inputs: Object.values(NAMES).map(input), input };
}

const pooled = (fs: HostFs, dir: string) => fs.readdir(dir).filter((n) => n.startsWith(".lane-"));

describe.each(HOSTS)("SandboxStoreDir on the $name host", ({ name, make }) => {
  it("holds exactly the small inputs, as links with canonical metadata; directories and big files are left to bind", () => {
    const fx = make();
    try {
      const fs = fx.host.fs;
      const { inputs, input } = setup(fs, fx.dir);
      const lane = new SandboxStoreDir(fs, `${fx.dir}/.lane-`, { limit: 1000 });
      const { dir, bind } = lane.prepare("/nix/store", inputs);
      expect(bind.map((b) => b.logical).sort()).toEqual([`/nix/store/${NAMES.big}`, `/nix/store/${NAMES.dir}`]);
      expect(fs.readdir(dir).sort()).toEqual([NAMES.exe, NAMES.file, NAMES.link].sort());
      expect(text(fs, `${dir}/${NAMES.file}`)).toBe("hello\n");
      const f = fs.lstat(`${dir}/${NAMES.file}`);
      expect([f.mode & 0o7777, Math.round(f.mtimeMs), f.nlink]).toEqual([0o444, 1000, 2]);
      expect(fs.lstat(`${dir}/${NAMES.exe}`).mode & 0o7777).toBe(0o555);
      expect(fs.readlink(`${dir}/${NAMES.link}`)).toBe("/nowhere");
      lane.finish(true);
      // The next build needs fewer inputs: the others are gone, the kept link is the same file.
      const ino = fs.lstat(`${dir}/${NAMES.file}`).ino;
      const again = lane.prepare("/nix/store", [input(NAMES.file), input(NAMES.dir)]);
      expect(again.dir).toBe(dir);
      expect(fs.readdir(dir)).toEqual([NAMES.file]);
      expect(fs.lstat(`${dir}/${NAMES.file}`).ino).toBe(ino);
      lane.dispose();
      expect(pooled(fs, fx.dir)).toEqual([]);
    } finally {
      fx.dispose();
    }
  });

  it("after a build, removes what the builder made and drops copies it changed or linked elsewhere (builder owns the copies)", () => {
    const fx = make();
    try {
      const fs = fx.host.fs;
      const { inputs } = setup(fs, fx.dir);
      const lane = new SandboxStoreDir(fs, `${fx.dir}/.lane-`, { limit: 1000 });
      const { dir } = lane.prepare("/nix/store", inputs);
      const exeIno = fs.lstat(`${dir}/${NAMES.exe}`).ino;
      // The "builder": rewrites one input in place (restoring mode and mtime), hard-links another into its output, leaves junk.
      fs.chmod(`${dir}/${NAMES.file}`, 0o644);
      fs.writeFile(`${dir}/${NAMES.file}`, "evil!\n");
      fs.chmod(`${dir}/${NAMES.file}`, 0o444);
      fs.utimes(`${dir}/${NAMES.file}`, 1, 1);
      fs.link(`${dir}/${NAMES.exe}`, `${fx.dir}/escaped-output`);
      fs.mkdir(`${dir}/junk`);
      fs.writeFile(`${dir}/junk/f`, "x");
      lane.finish(true);
      expect(fs.readdir(dir).sort()).toEqual([NAMES.link]);
      lane.prepare("/nix/store", inputs);
      expect(text(fs, `${dir}/${NAMES.file}`)).toBe("hello\n");
      // The escaped file is nobody's input any more.
      expect(fs.lstat(`${fx.dir}/escaped-output`).nlink).toBe(1);
      expect(fs.lstat(`${dir}/${NAMES.exe}`).ino).not.toBe(exeIno);
      expect(fs.lstat(`${dir}/${NAMES.exe}`).nlink).toBe(2);
      lane.dispose();
    } finally {
      fx.dispose();
    }
  });

  it("a builder whose processes may still run (killed) leaves nothing to reuse", () => {
    const fx = make();
    try {
      const fs = fx.host.fs;
      const { inputs } = setup(fs, fx.dir);
      const lane = new SandboxStoreDir(fs, `${fx.dir}/.lane-`, { limit: 1000 });
      const { dir } = lane.prepare("/nix/store", inputs);
      lane.finish(false);
      expect(pooled(fs, fx.dir)).toEqual([]);
      const next = lane.prepare("/nix/store", inputs);
      expect(next.dir).not.toBe(dir);
      expect(text(fs, `${next.dir}/${NAMES.file}`)).toBe("hello\n");
      lane.dispose();
    } finally {
      fx.dispose();
    }
  });

  it("an input whose copy cannot be linked is copied privately and removed after the build", () => {
    const fx = make();
    try {
      const fs = fx.host.fs;
      const { inputs } = setup(fs, fx.dir);
      const failing: HostFs = {
        ...fs,
        link: () => {
          throw Object.assign(new Error("EXDEV"), { code: "EXDEV" });
        },
      };
      const lane = new SandboxStoreDir(failing, `${fx.dir}/.lane-`, { limit: 1000 });
      const { dir } = lane.prepare("/nix/store", inputs);
      expect(text(fs, `${dir}/${NAMES.file}`)).toBe("hello\n");
      expect(fs.lstat(`${dir}/${NAMES.file}`).nlink).toBe(1);
      expect(fs.readlink(`${dir}/${NAMES.link}`)).toBe("/nowhere");
      lane.finish(true);
      expect(fs.readdir(dir)).toEqual([]);
      lane.dispose();
    } finally {
      fx.dispose();
    }
  });

  it.runIf(name === "memory" || isRoot)("when it may chown: copies belong to an unmapped id, the directory is sticky and group-writable as Nix's", () => {
    const fx = make();
    try {
      const fs = fx.host.fs;
      const { inputs } = setup(fs, fx.dir);
      const lane = new SandboxStoreDir(fs, `${fx.dir}/.lane-`, { limit: 1000, foreignOwner: { gid: 4242 } });
      const { dir } = lane.prepare("/nix/store", inputs);
      const d = fs.lstat(dir);
      expect([d.mode & 0o7777, d.uid, d.gid]).toEqual([0o1775, POOL_OWNER_UID, 4242]);
      for (const n of [NAMES.file, NAMES.exe, NAMES.link]) expect(fs.lstat(`${dir}/${n}`).uid).toBe(POOL_OWNER_UID);
      fs.writeFile(`${dir}/output`, "built");
      lane.finish(true);
      expect(fs.readdir(dir).sort()).toEqual([NAMES.exe, NAMES.file, NAMES.link].sort());
      lane.dispose();
    } finally {
      fx.dispose();
    }
  });
});
