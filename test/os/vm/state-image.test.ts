/**
 * The VM's disk image: owners, modes and links survive a save and restore;
 * a failed save leaves the previous image as it was and no temporary file.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { nodeHost } from "../../../src/host/node-host.js";
import { VmError } from "../../../src/os/vm/errors.js";
import { restoreStateImage, saveStateImage } from "../../../src/os/vm/state-image.js";
import { describeWith, namespacesUnavailable } from "./vm-support.js";

describeWith(namespacesUnavailable, "VM disk image", () => {
  const host = nodeHost();
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "tsnix-vm-image-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("keeps contents, modes and links across save and restore; no image yet is not an error", async () => {
    const root = join(dir, "root");
    const image = join(dir, "vm.img");
    expect(await restoreStateImage(host, image, root)).toBe(false);
    mkdirSync(join(root, "etc/ssh"), { recursive: true });
    writeFileSync(join(root, "etc/ssh/key"), "secret");
    chmodSync(join(root, "etc/ssh/key"), 0o600);
    mkdirSync(join(root, "tmp"));
    chmodSync(join(root, "tmp"), 0o1777);
    symlinkSync("/etc/static/hostname", join(root, "etc/hostname"));
    await saveStateImage(host, image, root);
    expect(readdirSync(dir).sort()).toEqual(["root", "vm.img"]);

    const back = join(dir, "back");
    mkdirSync(back);
    expect(await restoreStateImage(host, image, back)).toBe(true);
    expect(readFileSync(join(back, "etc/ssh/key"), "utf8")).toBe("secret");
    expect(statSync(join(back, "etc/ssh/key")).mode & 0o7777).toBe(0o600);
    expect(statSync(join(back, "tmp")).mode & 0o7777).toBe(0o1777);
    expect(readlinkSync(join(back, "etc/hostname"))).toBe("/etc/static/hostname");
  });

  it("a save that fails leaves the previous image untouched and no temporary file", async () => {
    const root = join(dir, "root");
    const image = join(dir, "vm.img");
    mkdirSync(join(root, "var"), { recursive: true });
    writeFileSync(join(root, "var/state"), "one");
    await saveStateImage(host, image, root);
    const before = readFileSync(image);
    const err = await saveStateImage(host, image, join(dir, "no-such-root")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VmError);
    expect((err as VmError).message).toMatch(/^cannot write the VM disk image '.*vm\.img': /);
    expect(readFileSync(image).equals(before)).toBe(true);
    expect(readdirSync(dir).sort()).toEqual(["root", "vm.img"]);
    // A damaged image is reported, not half-restored silently.
    writeFileSync(image, "not a tar archive");
    const back = join(dir, "back");
    mkdirSync(back);
    await expect(restoreStateImage(host, image, back)).rejects.toThrow(/^cannot read the VM disk image/);
    expect(existsSync(join(back, "var/state"))).toBe(false);
  });
});
