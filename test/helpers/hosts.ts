import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Host } from "../../src/host/host.js";
import { memoryHost } from "../../src/host/memory-host.js";
import { nodeHost } from "../../src/host/node-host.js";

/** A host plus a scratch directory on it, cleaned up by `dispose`. */
export interface HostFixture {
  readonly name: string;
  readonly host: Host;
  /** A fresh empty directory on the host. */
  readonly dir: string;
  dispose(): void;
}

/** Factories for each host: store and effect tests run once per entry (`describe.each(HOSTS)`). */
export const HOSTS: readonly { name: string; make: () => HostFixture }[] = [
  {
    name: "memory",
    make: () => {
      const host = memoryHost({ files: { "/work": null } });
      return { name: "memory", host, dir: "/work", dispose: () => {} };
    },
  },
  {
    name: "node",
    make: () => {
      const dir = mkdtempSync(join(tmpdir(), "tsnix-test-"));
      return { name: "node", host: nodeHost(), dir, dispose: () => rmSync(dir, { recursive: true, force: true }) };
    },
  },
];
