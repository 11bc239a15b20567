import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

/**
 * Start-up cost: the node host must not load node:child_process or node:os
 * until a command needs them, and the built CLI must not import the
 * CommonJS-only io-ts/fp-ts at run time (Node's CJS export lexer over them
 * cost more than the rest of `tsnix store --query`'s start-up). Checked on
 * the build in a fresh process, since vitest itself loads everything.
 */
const dist = join(import.meta.dirname, "../../dist");
const built = existsSync(join(dist, "index.js"));

function loadedBuiltins(script: string): string[] {
  const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
  return JSON.parse(out) as string[];
}

describe.runIf(built)("node host start-up (built)", () => {
  it("loads child_process and os only on first use", () => {
    const index = JSON.stringify(join(dist, "index.js"));
    const [before, after] = JSON.parse(
      execFileSync(
        process.execPath,
        [
          "--input-type=module",
          "-e",
          `const { nodeHost } = await import(${index});
           const has = (m) => process.moduleLoadList.includes("NativeModule " + m);
           const h = nodeHost();
           h.fs.readdir("/");
           const before = { cp: has("child_process"), os: has("os") };
           h.tmpdir();
           const p = h.spawn(process.execPath, ["-e", "0"]);
           const r = await p.wait();
           console.log(JSON.stringify([before, { cp: has("child_process"), os: has("os"), code: r.code }]));`,
        ],
        { encoding: "utf8" },
      ),
    ) as [{ cp: boolean; os: boolean }, { cp: boolean; os: boolean; code: number }];
    expect(before).toEqual({ cp: false, os: false });
    expect(after).toEqual({ cp: true, os: true, code: 0 });
  });

  it("bundles io-ts and fp-ts instead of importing them at run time", () => {
    const bare = /(?:from|import|require)\s*\(?\s*["'](?:io-ts|fp-ts)(?:\/[^"']*)?["']/;
    const offenders = readdirSync(dist).filter((f) => /\.(c?js)$/.test(f) && bare.test(readFileSync(join(dist, f), "utf8")));
    expect(offenders).toEqual([]);
  });

  it("does not start Node's CommonJS export lexer for a store query", () => {
    const root = mkdtempSync(join(tmpdir(), "tsnix-startup-"));
    try {
      const cli = JSON.stringify(join(dist, "cli.js"));
      // The query fails (empty store), but only after the store command and
      // its path-info codecs (io-ts) have loaded, which is what counts here.
      const mods = loadedBuiltins(
        `const { main } = await import(${cli});
         process.stderr.write = () => true;
         const code = await main(["--store", ${JSON.stringify(root)}, "store", "--query", "--hash", "/nix/store/00000000000000000000000000000000-x"]);
         console.log(JSON.stringify(code === 1 ? process.moduleLoadList : ["unexpected exit " + code]));`,
      );
      expect(mods.filter((m) => m.startsWith("unexpected") || m.includes("cjs-module-lexer"))).toEqual([]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
