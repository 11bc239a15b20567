/**
 * What the VM tests need from the machine: bubblewrap, nsenter, an OpenSSH
 * client, and the pinned Debian archives of pkgs.openssh in a cache
 * directory (fetched with `apt-get download` when missing). When something is
 * missing the tests are skipped with the reason, or fail under
 * TSNIX_REQUIRE_ORACLE=1 (as in .ci/run).
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, it } from "vitest";

export const REPO = resolve(import.meta.dirname, "../../..");

/** The archives pkgs.openssh pins, as apt names them. */
export const PINNED_DEBS: readonly { file: string; spec: string }[] = [
  { file: "openssh-server_1%3a9.2p1-2+deb12u10_amd64.deb", spec: "openssh-server=1:9.2p1-2+deb12u10" },
  { file: "openssh-client_1%3a9.2p1-2+deb12u10_amd64.deb", spec: "openssh-client=1:9.2p1-2+deb12u10" },
  { file: "libwrap0_7.6.q-32_amd64.deb", spec: "libwrap0=7.6.q-32" },
];

function which(cmd: string): string | undefined {
  for (const d of (process.env["PATH"] ?? "/usr/bin:/bin").split(":")) {
    const p = join(d, cmd);
    if (existsSync(p)) return p;
  }
  return undefined;
}

/** The .deb cache: $TSNIX_DEB_CACHE, else temp/debs in the repository. */
export const DEB_CACHE = process.env["TSNIX_DEB_CACHE"] ?? join(REPO, "temp", "debs");

function fetchDebs(): string | undefined {
  const missing = PINNED_DEBS.filter((d) => !existsSync(join(DEB_CACHE, d.file)));
  if (missing.length === 0) return undefined;
  if (which("apt-get") === undefined) return `the pinned .deb files are not in ${DEB_CACHE} and apt-get is not available to download them`;
  mkdirSync(DEB_CACHE, { recursive: true });
  try {
    execFileSync("apt-get", ["download", ...missing.map((d) => d.spec)], { cwd: DEB_CACHE, stdio: ["ignore", "ignore", "pipe"], timeout: 120_000 });
  } catch (e) {
    const err = (e as { stderr?: Buffer }).stderr?.toString().trim() ?? String(e);
    return `apt-get download ${missing.map((d) => d.spec).join(" ")} failed in ${DEB_CACHE}: ${err.split("\n").slice(-2).join(" ")}`;
  }
  const still = PINNED_DEBS.filter((d) => !existsSync(join(DEB_CACHE, d.file)));
  return still.length === 0 ? undefined : `apt-get did not produce ${still.map((d) => d.file).join(", ")}`;
}

/** Why VMs (and sandboxed builds) cannot run here, or undefined when they can. */
export const namespacesUnavailable: string | undefined = (() => {
  if (process.platform !== "linux") return "VMs need Linux namespaces";
  for (const [cmd, pkg] of [
    ["bwrap", "bubblewrap"],
    ["nsenter", "util-linux"],
    ["tar", "tar"],
  ] as const)
    if (which(cmd) === undefined) return `${cmd} is not installed (Debian package ${pkg})`;
  try {
    execFileSync("bwrap", ["--unshare-all", "--ro-bind", "/", "/", "--", "/bin/true"], { stdio: "ignore", timeout: 10_000 });
  } catch {
    return "bubblewrap cannot create namespaces on this machine";
  }
  return undefined;
})();

/** Why the end-to-end VM tests (ssh into a VM running pkgs.openssh) cannot run here. */
export const vmUnavailable: string | undefined = (() => {
  if (namespacesUnavailable !== undefined) return namespacesUnavailable;
  for (const cmd of ["ssh", "ssh-keygen"]) if (which(cmd) === undefined) return `${cmd} is not installed (Debian package openssh-client)`;
  return fetchDebs();
})();

/** Whether missing prerequisites are a failure rather than a skip. */
export const requireVm = process.env["TSNIX_REQUIRE_ORACLE"] === "1";

/**
 * `describe` for tests needing what `reason` says is missing: run when
 * nothing is, skipped with the reason otherwise, or a failure naming it under
 * TSNIX_REQUIRE_ORACLE=1.
 */
export function describeWith(reason: string | undefined, name: string, body: () => void): void {
  if (reason === undefined) describe(name, body);
  else if (requireVm)
    describe(name, () => {
      it("has what it needs", () => {
        throw new Error(`TSNIX_REQUIRE_ORACLE=1 but ${reason}`);
      });
    });
  else {
    console.warn(`skipping '${name}': ${reason}`);
    describe.skip(name, body);
  }
}
