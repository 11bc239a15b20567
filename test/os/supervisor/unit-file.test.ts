import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { UnitFileError, expandCommand, parseUnit, parseUnitSections, splitUnitWords } from "../../../src/os/supervisor/unit-file.js";

// A unit shaped as NixOS generates them (nixos/lib/systemd-lib.nix).
const SSHD = `[Unit]
After=network.target
Description=SSH Daemon
Wants=network.target keygen.service
X-StopIfChanged=false

[Service]
Environment="LOCALE_ARCHIVE=/nix/store/x-glibc-locales/lib/locale/locale-archive"
Environment="PATH=/nix/store/a-openssh/bin:/nix/store/b-coreutils/bin"
Environment="TZDIR=/nix/store/c-tzdata/share/zoneinfo"
ExecStart=/nix/store/a-openssh/bin/sshd -D -f /etc/ssh/sshd_config
ExecStartPre=/nix/store/d-unit-script-sshd-pre-start/bin/sshd-pre-start
KillMode=process
Restart=always
Type=simple

[Install]
WantedBy=multi-user.target
`;

describe("parseUnit", () => {
  it("reads a NixOS-generated service", () => {
    const u = parseUnit("sshd.service", SSHD);
    expect(u.description).toBe("SSH Daemon");
    expect(u.type).toBe("simple");
    expect(u.restart).toBe("always");
    expect(u.execStart).toEqual([{ argv: ["/nix/store/a-openssh/bin/sshd", "-D", "-f", "/etc/ssh/sshd_config"], ignoreFailure: false, argv0Override: false }]);
    expect(u.execStartPre.map((c) => c.argv[0])).toEqual(["/nix/store/d-unit-script-sshd-pre-start/bin/sshd-pre-start"]);
    expect(u.environment["PATH"]).toBe("/nix/store/a-openssh/bin:/nix/store/b-coreutils/bin");
    expect(u.environment["TZDIR"]).toBe("/nix/store/c-tzdata/share/zoneinfo");
    expect(u.wants).toEqual(["network.target", "keygen.service"]);
    expect(u.after).toEqual(["network.target"]);
    expect(u.wantedBy).toEqual(["multi-user.target"]);
    expect(u.sections.get("Unit")?.get("X-StopIfChanged")).toEqual(["false"]);
  });

  it("accumulates repeated keys, resets on an empty assignment, joins continuations, skips comments", () => {
    const u = parseUnit(
      "a.service",
      "# comment\n[Service]\nType=oneshot\nExecStart=/bin/a\n; other comment\nExecStart=\nExecStart=/bin/b \\\n  --flag \\\n# inner comment\n  value\nExecStart=-/bin/c\nEnvironment=A=1 B=\"two words\"\nEnvironment=A=3\nRestartSec=250ms\nTimeoutStopSec=1min 30s\n",
    );
    expect(u.execStart.map((c) => c.argv)).toEqual([["/bin/b", "--flag", "value"], ["/bin/c"]]);
    expect(u.execStart[1]!.ignoreFailure).toBe(true);
    expect(u.environment).toEqual({ A: "3", B: "two words" });
    expect(u.restartSec).toBeCloseTo(0.25);
    expect(u.timeoutStopSec).toBe(90);
  });

  it("defaults: simple with ExecStart, oneshot without, Restart=no, RestartSec=100ms", () => {
    expect(parseUnit("x.service", "[Service]\nExecStart=/bin/x\n")).toMatchObject({ type: "simple", restart: "no", restartSec: 0.1 });
    expect(parseUnit("y.service", "[Unit]\nDescription=y\n").type).toBe("oneshot");
  });

  it("the @ prefix drops the argv[0] override word", () => {
    expect(parseUnit("x.service", "[Service]\nExecStart=@/bin/sh mysh -c true\n").execStart[0]!.argv).toEqual(["/bin/sh", "-c", "true"]);
  });

  it.each([
    ["[Service]\nExecStart=sshd -D\n", /executable path is not absolute: 'sshd'/],
    ["[Service]\nExecStart=/bin/a\nExecStart=/bin/b\n", /more than one ExecStart= setting/],
    ["[Service]\nRestart=sometimes\nExecStart=/bin/a\n", /invalid Restart= value 'sometimes'/],
    ["[Service]\nType=weird\nExecStart=/bin/a\n", /unknown service type 'weird'/],
    ["ExecStart=/bin/a\n", /x.service:1: assignment outside of a section/],
    ["[Service\n", /x.service:1: invalid section header/],
    ["[Service]\nExecStart /bin/a\n", /x.service:2: missing '='/],
    ["[Service]\nExecStart=/bin/a\nRestartSec=soon\n", /invalid time span 'soon'/],
    ["[Service]\nExecStart=/bin/a \"open\n", /unterminated quote/],
  ])("rejects bad input with a located message (%#)", (text, re) => {
    expect(() => parseUnit("x.service", text)).toThrow(UnitFileError);
    expect(() => parseUnit("x.service", text)).toThrow(re);
  });
});

describe("words and expansion", () => {
  it("splits with systemd's quoting", () => {
    expect(splitUnitWords(`a "b c" 'd "e"' f\\ g "h\\"i" x\\ty`)).toEqual(["a", "b c", 'd "e"', "f g", 'h"i', "x\ty"]);
  });

  it("expands ${VAR} as one word and a whole-word $VAR split at whitespace", () => {
    const env = { OPTS: "-a  -b", P: "/x y", E: "" };
    expect(expandCommand(["/bin/p", "$OPTS", "${P}", "--k=$P", "$$HOME", "$MISSING", "${E}"], env)).toEqual(["/bin/p", "-a", "-b", "/x y", "--k=/x y", "$HOME", ""]);
  });

  it("round-trips generated words through quoting", () => {
    fc.assert(
      fc.property(fc.array(fc.string({ minLength: 1, maxLength: 8 }).filter((s) => !/[\\"\n\r]/.test(s)), { minLength: 1, maxLength: 6 }), (words) => {
        const line = words.map((w) => `"${w}"`).join(" ");
        expect(splitUnitWords(line)).toEqual(words);
      }),
    );
  });

  it("sections keep keys per section", () => {
    const s = parseUnitSections("[A]\nk=1\n[B]\nk=2\n[A]\nk=3\n");
    expect(s.get("A")?.get("k")).toEqual(["1", "3"]);
    expect(s.get("B")?.get("k")).toEqual(["2"]);
  });
});
