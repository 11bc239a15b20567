import type { Host } from "../../src/host/host.js";
import { tryLockFile } from "../../src/host/lock-file.js";
import type { ManifestElement, MetaValue } from "../../src/profiles/manifest.js";
import { LocalStore } from "../../src/store/local-store.js";

let counter = 0;

/** A fresh store under `dir` on `host`. */
export function makeStore(host: Host, dir: string): LocalStore {
  return new LocalStore({ host, root: `${dir}/root-${++counter}` });
}

/**
 * Add a package to the store: `files` maps relative paths to contents
 * (a string ending in "/" makes a directory, "->target" a symlink).
 */
export function addPackage(store: LocalStore, dir: string, name: string, files: Record<string, string>): string {
  const fs = store.host.fs;
  const src = `${dir}/src-${++counter}/${name}`;
  fs.mkdir(src, { recursive: true });
  for (const [rel, content] of Object.entries(files).sort()) {
    const p = `${src}/${rel}`;
    fs.mkdir(p.slice(0, p.lastIndexOf("/")), { recursive: true });
    if (content.endsWith("/")) fs.mkdir(p, { recursive: true });
    else if (content.startsWith("->")) fs.symlink(content.slice(2), p);
    else fs.writeFile(p, content);
  }
  return store.addPath(src, { name });
}

/** A manifest element for a single-output package at `path`. */
export function element(name: string, path: string, meta: Record<string, MetaValue> = {}): ManifestElement {
  return { name, outPath: path, outputs: [{ name: "out", path }], system: "x86_64-linux", meta };
}

/** The symlink forest under a physical directory, as `rel -> target` / `rel/`. */
export function forest(host: Host, dir: string): string[] {
  const out: string[] = [];
  const walk = (p: string, rel: string) => {
    for (const n of host.fs.readdir(p).sort()) {
      const full = `${p}/${n}`;
      const r = rel === "" ? n : `${rel}/${n}`;
      const st = host.fs.lstat(full);
      if (st.type === "symlink") out.push(`${r} -> ${host.fs.readlink(full)}`);
      else if (st.type === "directory") {
        out.push(`${r}/`);
        walk(full, r);
      } else out.push(r);
    }
  };
  walk(dir, "");
  return out;
}

/** The same host seen as another process `pid` (locks and temp roots are per pid). */
export function hostAs(base: Host, pid: number, alive: Set<number>): Host {
  const h: Host = {
    ...base,
    pid,
    processAlive: (p) => alive.has(p) || (p !== pid && base.processAlive(p)),
    tryLock: (p) => tryLockFile(h, p),
  };
  return h;
}

