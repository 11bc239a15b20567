import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { ManifestElement, MetaValue } from "../../src/profiles/manifest.js";
import { type QueryItem, formatQuery, sortQueryItems } from "../../src/profiles/query.js";

const item = (name: string, extra: Partial<ManifestElement> = {}, attrPath = name, outputName = ""): QueryItem => ({
  attrPath,
  outputName,
  element: { name, outPath: `/nix/store/${"a".repeat(32)}-${name}`, outputs: [{ name: "out", path: `/nix/store/${"a".repeat(32)}-${name}` }], system: "x86_64-linux", meta: {}, ...extra },
});

const nameArb = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_.+-]{0,12}$/);

describe("nix-env -q output", () => {
  it("table: every column but the last is padded to its widest cell plus two spaces (UTF-8 bytes)", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(nameArb, fc.string({ maxLength: 10 }), fc.constantFrom("x86_64-linux", "unknown", "é")), { minLength: 1, maxLength: 8 }), (rows) => {
        const items = rows.map(([n, d, sys]) => item(n, { meta: { description: d.replace(/\n/g, "") }, system: sys }));
        const out = formatQuery(items, { system: true, description: true });
        const lines = out.split("\n").slice(0, -1);
        expect(lines.length).toBe(items.length);
        const sorted = sortQueryItems(items);
        const bytes = (s: string) => new TextEncoder().encode(s).length;
        const w1 = Math.max(...sorted.map((x) => bytes(x.element.name))) + 2;
        const w2 = Math.max(...sorted.map((x) => bytes(x.element.system))) + 2;
        lines.forEach((l, i) => {
          const e = sorted[i]!.element;
          const b = Buffer.from(l);
          expect(b.subarray(0, w1).toString()).toBe(e.name + " ".repeat(w1 - bytes(e.name)));
          expect(b.subarray(w1, w1 + w2).toString()).toBe(e.system + " ".repeat(w2 - bytes(e.system)));
          expect(b.subarray(w1 + w2).toString()).toBe(e.meta["description"]);
        });
      }),
    );
  });

  it("sorts by name with upper-cased bytes (so '_' sorts after letters)", () => {
    const out = formatQuery([item("_zed-1"), item("hello-2"), item("Apple-1"), item("hello-1", {}, "second")], { attrPath: true });
    expect(out).toBe("Apple-1  Apple-1\nsecond   hello-1\nhello-2  hello-2\n_zed-1   _zed-1\n");
  });

  it("json: meta values come back as they went in, objects with sorted keys, two-space indentation", () => {
    const metaArb = fc.letrec((tie) => ({
      v: fc.oneof({ depthSize: "small" }, fc.string(), fc.integer(), fc.boolean(), fc.constant(null), fc.array(tie("v"), { maxLength: 3 }), fc.dictionary(fc.string({ minLength: 1, maxLength: 5 }), tie("v"), { maxKeys: 3 })),
    })).v as fc.Arbitrary<MetaValue>;
    fc.assert(
      fc.property(fc.dictionary(fc.string({ minLength: 1, maxLength: 6 }), metaArb, { maxKeys: 4 }), (meta) => {
        const out = formatQuery([item("p-1", { meta })], { format: "json", meta: true });
        const parsed = JSON.parse(out) as Record<string, { meta: unknown; pname: string; version: string }>;
        expect(parsed["p-1"]!.meta).toEqual(JSON.parse(JSON.stringify(meta)));
        expect(parsed["p-1"]!.pname).toBe("p");
        expect(out.split("\n")[1]).toBe('  "p-1": {');
      }),
    );
  });

  it("json and xml escape as Nix's writers do", () => {
    const e = item("a-1", { meta: { description: 'q"\\\n\t\u0001<&>é' } });
    expect(formatQuery([e], { format: "json", meta: true })).toContain('"description": "q\\"\\\\\\n\\t\\u0001<&>é"');
    expect(formatQuery([e], { format: "xml", description: true })).toContain(' description="q&quot;\\&#xA;\t\u0001&lt;&amp;&gt;é"');
    expect(formatQuery([], { format: "json" })).toBe("{}\n");
    expect(formatQuery([], { format: "xml" })).toBe("<?xml version='1.0' encoding='utf-8'?>\n<items>\n</items>\n");
  });

  it("--compare-versions and --status columns", () => {
    const installed = [item("hello-1.0").element, item("other-2").element];
    const others = [item("hello-2.0").element, item("hello-0.5").element, item("other-2").element];
    const out = formatQuery([item("hello-1.0"), item("other-2"), item("lone-1")], { compareVersions: true, status: true, installed, others, isValid: (p) => p.endsWith("hello-1.0") });
    expect(out).toBe("IP-  hello-1.0  < 2.0\n---  lone-1     - ?\nI--  other-2    = 2\n");
  });
});
