import fc from "fast-check";
import type { HostFs } from "../../src/host/host.js";

/** A file system object to materialise on a host. */
export type Tree =
  | { readonly t: "file"; readonly contents: Uint8Array; readonly exec: boolean }
  | { readonly t: "link"; readonly target: string }
  | { readonly t: "dir"; readonly entries: Readonly<Record<string, Tree>> };

// Characters chosen to stress byte-order sorting: ASCII punctuation below and
// above letters, multi-byte UTF-8, an astral character (UTF-16 order differs
// from UTF-8 order between it and U+E000..U+FFFF) and whitespace.
const NAME_CHARS = ["a", "b", "B", "Z", "0", ".", "-", "_", " ", "~", "é", "日", "😀", "\u{e000}", "\u{ffee}", "\n"];

export const nameArb: fc.Arbitrary<string> = fc
  .string({ unit: fc.constantFrom(...NAME_CHARS), minLength: 1, maxLength: 5 })
  .filter((n) => n !== "." && n !== "..");

const targetArb = fc.oneof(
  fc.constantFrom("/etc/passwd", "../../escape", ".", "..", "/", "a b", "dangling/x", "😀"),
  fc.string({ unit: fc.constantFrom(...NAME_CHARS, "/"), minLength: 1, maxLength: 12 }),
);

const contentsArb = fc.oneof(
  { weight: 3, arbitrary: fc.uint8Array({ minLength: 0, maxLength: 40 }) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 0, maxLength: 3000 }) },
  { weight: 1, arbitrary: fc.constant(new Uint8Array(0)) },
);

export const treeArb: fc.Arbitrary<Tree> = fc.letrec<{ tree: Tree; dir: Tree }>((tie) => ({
  tree: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.record({ t: fc.constant("file" as const), contents: contentsArb, exec: fc.boolean() }),
    fc.record({ t: fc.constant("link" as const), target: targetArb }),
    tie("dir"),
  ),
  dir: fc.record({
    t: fc.constant("dir" as const),
    entries: fc.dictionary(nameArb, tie("tree"), { maxKeys: 5, noNullPrototype: true }),
  }),
})).tree;

/** A directory at the root, as store paths of sources usually are. */
export const dirTreeArb: fc.Arbitrary<Tree> = fc
  .dictionary(nameArb, treeArb, { maxKeys: 6, noNullPrototype: true })
  .map((entries) => ({ t: "dir" as const, entries }));

/** Write `tree` at `path`; `order` permutes the creation order of entries. */
export function materialise(fs: HostFs, path: string, tree: Tree, order: (names: string[]) => string[] = (n) => n): void {
  switch (tree.t) {
    case "file":
      fs.writeFile(path, tree.contents, { mode: tree.exec ? 0o755 : 0o644 });
      fs.chmod(path, tree.exec ? 0o755 : 0o644);
      return;
    case "link":
      fs.symlink(tree.target, path);
      return;
    case "dir":
      fs.mkdir(path, { mode: 0o755 });
      for (const name of order(Object.keys(tree.entries))) materialise(fs, `${path}/${name}`, tree.entries[name]!, order);
      return;
  }
}

/** Read a tree back (for round-trip comparisons independent of NAR). */
export function readTree(fs: HostFs, path: string): Tree {
  const st = fs.lstat(path);
  if (st.type === "symlink") return { t: "link", target: fs.readlink(path) };
  if (st.type === "regular") return { t: "file", contents: new Uint8Array(fs.readFile(path)), exec: (st.mode & 0o100) !== 0 };
  const entries: Record<string, Tree> = {};
  for (const n of fs.readdir(path).sort()) entries[n] = readTree(fs, `${path}/${n}`);
  return { t: "dir", entries };
}

/** Little NAR builder for hand-made (possibly malformed) archives. */
export function narStr(s: string | Uint8Array, pad = 0): Uint8Array {
  const b = typeof s === "string" ? new TextEncoder().encode(s) : s;
  const p = (8 - (b.length % 8)) % 8;
  const out = new Uint8Array(8 + b.length + p);
  new DataView(out.buffer).setUint32(0, b.length, true);
  out.set(b, 8);
  if (p > 0 && pad !== 0) out[8 + b.length] = pad;
  return out;
}

export function cat(...parts: (string | Uint8Array)[]): Uint8Array {
  const bs = parts.map((p) => (typeof p === "string" ? narStr(p) : p));
  const out = new Uint8Array(bs.reduce((n, b) => n + b.length, 0));
  let o = 0;
  for (const b of bs) {
    out.set(b, o);
    o += b.length;
  }
  return out;
}

/** Hand-made NAR of a regular file. */
export function narFile(contents: string, exec = false): (string | Uint8Array)[] {
  return ["(", "type", "regular", ...(exec ? ["executable", ""] : []), "contents", contents, ")"];
}

/** Hand-made NAR directory with entries in the given (possibly wrong) order. */
export function narDir(entries: [string | Uint8Array, (string | Uint8Array)[]][]): (string | Uint8Array)[] {
  const out: (string | Uint8Array)[] = ["(", "type", "directory"];
  for (const [name, node] of entries) out.push("entry", "(", "name", typeof name === "string" ? name : narStr(name), "node", ...node, ")");
  out.push(")");
  return out;
}

export function nar(node: (string | Uint8Array)[]): Uint8Array {
  return cat("nix-archive-1", ...node);
}
