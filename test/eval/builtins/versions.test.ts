/** compareVersions, splitVersion and parseDrvName against Nix 2.8 on generated version strings. */
import fc from "fast-check";
import { expect, it } from "vitest";
import { compareVersions, parseDrvName, splitVersion } from "../../../src/eval/builtins/versions.js";
import { describeOracle } from "../../helpers/oracle.js";
import { agree, agreeAll, lit } from "./harness.js";

it("compareVersions is antisymmetric and reflexive", () => {
  const v = fc.string({ unit: fc.constantFrom("1", "2", "0", "9", ".", "-", "a", "pre", "rc", "b"), maxLength: 8 });
  fc.assert(
    fc.property(v, v, (a, b) => {
      expect(compareVersions(a, b) + compareVersions(b, a)).toBe(0);
      expect(compareVersions(a, a)).toBe(0);
    }),
  );
  expect(splitVersion("1.2.3pre")).toEqual(["1", "2", "3", "pre"]);
  expect(parseDrvName("hello-2.10")).toEqual({ name: "hello", version: "2.10" });
});

const VALUES = [
  'builtins.compareVersions "1.0" "2.3"',
  'builtins.compareVersions "2.1" "2.3"',
  'builtins.compareVersions "2.3" "2.3"',
  'builtins.compareVersions "2.5" "2.3"',
  'builtins.compareVersions "3.1" "2.3"',
  'builtins.compareVersions "2.3.1" "2.3"',
  'builtins.compareVersions "2.3.1" "2.3a"',
  'builtins.compareVersions "2.3pre1" "2.3"',
  'builtins.compareVersions "2.3pre3" "2.3pre12"',
  'builtins.compareVersions "2.3a" "2.3c"',
  'builtins.compareVersions "2.3pre1" "2.3c"',
  'builtins.compareVersions "2.3pre1" "2.3q"',
  'builtins.compareVersions "1.2.3" "1.2.3.0"',
  'builtins.compareVersions "99999999999" "100000000000"',
  'builtins.compareVersions "" "1"',
  'builtins.splitVersion "1.2.3-pre-4a5"',
  'builtins.splitVersion ""',
  'builtins.splitVersion "..--"',
  'builtins.parseDrvName "nix-0.12pre12876"',
  'builtins.parseDrvName "hello"',
  'builtins.parseDrvName "a-b-c-1.0-x"',
  'builtins.parseDrvName "foo-"',
  'builtins.parseDrvName "foo-é"',
];

describeOracle("version builtins vs Nix 2.8", () => {
  it(`agree on ${VALUES.length} values`, () => agreeAll(VALUES));
  it("agree on errors", () => {
    agree('builtins.compareVersions 1 "a"');
    agree("builtins.splitVersion 1");
    agree("builtins.parseDrvName 1");
  });
  it("agree on 400 generated version pairs and 200 names", () => {
    const part = fc.constantFrom("0", "1", "2", "10", "01", "9999999999", "a", "b", "pre", "rc", "alpha", "", "é");
    const sep = fc.constantFrom(".", "-", "", "..");
    const version = fc.array(fc.tuple(part, sep), { maxLength: 5 }).map((xs) => xs.map(([p, s]) => p + s).join(""));
    const pairs = fc.sample(fc.tuple(version, version), { numRuns: 400, seed: 21 });
    agreeAll(pairs.map(([a, b]) => `[ (builtins.compareVersions ${lit(a)} ${lit(b)}) (builtins.splitVersion ${lit(a)}) ]`));
    const name = fc.array(fc.constantFrom("foo", "-", "1", ".", "bar", "X", "é", "_"), { maxLength: 6 }).map((xs) => xs.join(""));
    agreeAll(fc.sample(name, { numRuns: 200, seed: 22 }).map((n) => `builtins.parseDrvName ${lit(n)}`));
  });
});
