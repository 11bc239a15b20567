/**
 * Per-path locks: hard links to the store's one lock file per process, and
 * the host's lock files when the file system refuses hard links (EPERM and
 * its kin). Either way a path locked by one holder is refused to another
 * until it is released, and adding and deleting paths work the same.
 */
import { describe, expect, it } from "vitest";
import { HostError } from "../../src/errors.js";
import type { Host, HostFs } from "../../src/host/host.js";
import { memoryHost } from "../../src/host/memory-host.js";
import { LocalStore } from "../../src/store/local-store.js";

/** The memory host, with `link` refused as a file system without hard links refuses it. */
function withoutLinks(host: Host, errno: string): Host {
  const fs: HostFs = Object.create(host.fs) as HostFs;
  let refused = 0;
  fs.link = (a: string, b: string) => {
    refused++;
    throw new HostError(errno, "link", `${a} -> ${b}`);
  };
  const h = Object.assign(Object.create(host) as Host, { fs });
  Object.defineProperty(h, "refused", { get: () => refused });
  return h;
}

describe.each([
  ["hard links", (h: Host) => h],
  ["no hard links (EPERM)", (h: Host) => withoutLinks(h, "EPERM")],
  ["no hard links (EXDEV)", (h: Host) => withoutLinks(h, "EXDEV")],
])("path locks with %s", (_name, adapt) => {
  function setUp() {
    const base = memoryHost({ files: { "/src/a": "hello\n" } });
    const host = adapt(base);
    return { host, store: new LocalStore({ host, root: "/r" }) };
  }

  it("a held path is refused to a second holder, and free again once released", () => {
    const { host, store } = setUp();
    const p = "/nix/store/00000000000000000000000000000000-x";
    const first = store.tryLockPath(p);
    expect(first).not.toBeNull();
    // Without hard links, the store tries once and then keeps to the host's lock files.
    if ("refused" in host) expect((host as unknown as { refused: number }).refused).toBe(1);
    expect(store.tryLockPath(p)).toBeNull();
    first!.release();
    const again = store.tryLockPath(p);
    expect(again).not.toBeNull();
    again!.release();
  });

  it("adds and deletes paths, leaving no lock behind", () => {
    const { host, store } = setUp();
    const p = store.addPath("/src/a");
    expect(store.isValidPath(p)).toBe(true);
    const lock = store.tryLockPath(p);
    expect(lock).not.toBeNull();
    lock!.release();
    store.deletePaths([p]);
    expect(store.isValidPath(p)).toBe(false);
    expect(host.fs.readdir("/r/nix/store").filter((n) => !n.startsWith("."))).toEqual([]);
    if ("refused" in host) expect((host as unknown as { refused: number }).refused).toBe(1);
    else expect(host.fs.readdir("/r/nix/var/nix/tsnix-db/locks").some((n) => n.startsWith(".src-"))).toBe(true);
  });
});
