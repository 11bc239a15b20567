import { describe, expect, it } from "vitest";
import { memoryHost } from "../../src/host/memory-host.js";
import {
  applyClientSettings,
  checkAllowed,
  checkMayAddPath,
  checkMaySetSandbox,
  checkMaySubstituteFrom,
  checkOwnsPath,
  isTrusted,
  loadSettings,
  makeSettings,
  parseConfig,
} from "../../src/profiles/settings.js";

describe("nix.conf settings", () => {
  it("parses Nix's syntax: comments, extra-, include, later lines win; defaults as Nix", () => {
    const host = memoryHost({
      files: {
        "/etc/nix/nix.conf": "# comment\ntrusted-users = root @wheel\nsubstituters = https://a.example\nextra-substituters = https://b.example # more\nkeep-outputs = true\nmax-jobs = auto\ninclude extra.conf\n!include missing.conf\n",
        "/etc/nix/extra.conf": "sandbox = relaxed\nkeep-outputs = false\n",
      },
    });
    const s = loadSettings(host, "/etc/nix/nix.conf", new Map([["require-sigs", "false"]]));
    expect(s.trustedUsers).toEqual(["root", "@wheel"]);
    expect(s.substituters).toEqual(["https://a.example", "https://b.example"]);
    expect(s.keepOutputs).toBe(false);
    expect(s.keepDerivations).toBe(true);
    expect(s.maxJobs).toBe("auto");
    expect(s.sandbox).toBe("relaxed");
    expect(s.requireSigs).toBe(false);
    expect(makeSettings().allowedUsers).toEqual(["*"]);
    expect(makeSettings().trustedUsers).toEqual(["root"]);
    expect(() => parseConfig("oops\n", "/x")).toThrow("illegal configuration line 'oops' in '/x'");
    expect(() => makeSettings(new Map([["keep-outputs", "maybe"]]))).toThrow("Boolean setting 'keep-outputs' has invalid value 'maybe'");
    expect(() => loadSettings(host, "/etc/nix/bad.conf")).not.toThrow();
  });

  it("applies Nix's trust rules to untrusted and trusted users", () => {
    const s = makeSettings(new Map([["trusted-users", "root @admins"], ["allowed-users", "alice bob carol"], ["trusted-substituters", "https://extra.example"]]));
    const alice = { name: "alice" };
    const admin = { name: "dave", groups: ["admins"] };
    expect(isTrusted(s, alice)).toBe(false);
    expect(isTrusted(s, admin)).toBe(true);
    expect(isTrusted(s, { name: "root" })).toBe(true);
    expect(() => checkAllowed(s, { name: "mallory" })).toThrow("user 'mallory' is not allowed to connect to the Nix daemon");
    checkAllowed(s, admin);
    // Unsigned paths
    expect(() => checkMayAddPath(s, alice, "/nix/store/x-a", false)).toThrow("cannot add path '/nix/store/x-a' because it lacks a valid signature");
    checkMayAddPath(s, alice, "/nix/store/x-a", true);
    checkMayAddPath(s, admin, "/nix/store/x-a", false);
    // Substituters
    expect(() => checkMaySubstituteFrom(s, alice, "https://evil.example")).toThrow(/not trusted/);
    checkMaySubstituteFrom(s, alice, "https://extra.example");
    checkMaySubstituteFrom(s, admin, "https://evil.example");
    // Sandbox
    expect(() => checkMaySetSandbox(s, alice, "false")).toThrow("only trusted users may set 'sandbox' to 'false'");
    checkMaySetSandbox(s, admin, "false");
    // Client settings as the daemon filters them
    const warnings: string[] = [];
    const got = applyClientSettings(s, alice, new Map([["sandbox", "false"], ["timeout", "5"], ["substituters", "https://extra.example"], ["keep-outputs", "true"]]), (w) => warnings.push(w));
    expect(got.sandbox).toBe("true");
    expect(got.keepOutputs).toBe(false);
    expect(got.substituters).toEqual(["https://extra.example"]);
    expect(got.raw.get("timeout")).toBe("5");
    expect(warnings).toEqual([
      "ignoring the client-specified setting 'sandbox', because it is a restricted setting and you are not a trusted user",
      "ignoring the client-specified setting 'keep-outputs', because it is a restricted setting and you are not a trusted user",
    ]);
    const asAdmin = applyClientSettings(s, admin, new Map([["sandbox", "false"]]));
    expect(asAdmin.sandbox).toBe("false");
  });

  it("per-user profiles and roots belong to their user", () => {
    const s = makeSettings();
    expect(() => checkOwnsPath(s, { name: "alice" }, "/nix/var/nix/profiles/per-user/bob/profile")).toThrow("user 'alice' may not change '/nix/var/nix/profiles/per-user/bob/profile', which belongs to user 'bob'");
    checkOwnsPath(s, { name: "bob" }, "/nix/var/nix/profiles/per-user/bob/profile");
    checkOwnsPath(s, { name: "root" }, "/nix/var/nix/gcroots/per-user/bob/x");
  });
});

describe("the host user's Unix groups", () => {
  it("on the node host: the primary group and the supplementary groups /etc/group lists, as `id -Gn` shows them", async () => {
    const { execFileSync } = await import("node:child_process");
    const { nodeHost } = await import("../../src/host/node-host.js");
    const { hostUserIdentity } = await import("../../src/profiles/settings.js");
    const me = hostUserIdentity(nodeHost());
    const idGroups = execFileSync("id", ["-Gn"], { encoding: "utf8" }).trim().split(/\s+/);
    // id also sees groups only a directory service knows; every group we find is one of id's, and the primary one is found.
    expect(idGroups).toEqual(expect.arrayContaining(me.groups as string[]));
    expect(me.groups).toContain(execFileSync("id", ["-gn"], { encoding: "utf8" }).trim());
  });

  it("on the memory host: /etc/group's values (members, primary gid, comments and blank lines skipped)", async () => {
    const { unixGroupsOf } = await import("../../src/profiles/settings.js");
    const host = memoryHost({ files: { "/etc/group": "# comment\n\nwheel:x:10:alice,bob\nusers:x:100:\nalicegrp:x:1000:\nother:x:11:bobby\n" } });
    expect(unixGroupsOf(host, { name: "alice", gid: 1000 })).toEqual(["wheel", "alicegrp"]);
    expect(unixGroupsOf(host, { name: "bob", gid: 100 })).toEqual(["wheel", "users"]);
    expect(unixGroupsOf(memoryHost(), { name: "bob", gid: 100 })).toEqual([]);
  });
});
