/**
 * Reference scanning: which store paths does a file tree mention? As Nix does,
 * we look for the 32-character hash part of each candidate path anywhere in
 * the NAR serialisation of the tree (file contents, symlink targets, names),
 * so references hidden in binaries, RPATHs or compressed-looking data that
 * happen to contain the hash are found too.
 */

/** Nix base-32 alphabet: the only bytes that can occur in a hash part. */
const NIX32_ALPHABET = "0123456789abcdfghijklmnpqrsvwxyz";
const HASH_LEN = 32;

const IS_NIX32 = (() => {
  const t = new Uint8Array(256);
  for (let i = 0; i < NIX32_ALPHABET.length; i++) t[NIX32_ALPHABET.charCodeAt(i)] = 1;
  return t;
})();

/**
 * An incremental scanner: feed it the bytes of a NAR (or any stream) in
 * chunks of any size; hashes that straddle a chunk boundary are found.
 *
 * Candidates are 32-character hash parts. The scan skips ahead by the
 * position of the last non-base-32 byte in each window (as Nix's scanner
 * does), so ordinary text and binaries are passed over in big strides, and a
 * two-character prefix filter keeps long base-32 runs from allocating.
 * @public
 */
export class ReferenceScanner {
  private readonly candidates: ReadonlySet<string>;
  /** Bitmap over the first two characters of every candidate (32×32 entries). */
  private readonly prefix = new Uint8Array(256 * 256);
  private readonly hits = new Set<string>();
  /** The last HASH_LEN-1 bytes seen, for windows that cross into the next chunk. */
  private tail = new Uint8Array(0);

  constructor(hashParts: Iterable<string>) {
    const set = new Set<string>();
    for (const h of hashParts) {
      if (h.length !== HASH_LEN) continue;
      set.add(h);
      this.prefix[(h.charCodeAt(0) << 8) | h.charCodeAt(1)] = 1;
    }
    this.candidates = set;
  }

  /** Scan the next chunk of the stream. */
  update(chunk: Uint8Array): void {
    if (this.candidates.size === this.hits.size || chunk.length === 0) {
      this.keepTail(chunk);
      return;
    }
    if (this.tail.length > 0) {
      // Windows that start in the previous chunk: scan tail + the chunk's first bytes.
      const head = chunk.subarray(0, HASH_LEN - 1);
      const joined = new Uint8Array(this.tail.length + head.length);
      joined.set(this.tail, 0);
      joined.set(head, this.tail.length);
      this.scan(joined);
    }
    this.scan(chunk);
    this.keepTail(chunk);
  }

  /** Hash parts found so far. */
  found(): Set<string> {
    return new Set(this.hits);
  }

  private keepTail(chunk: Uint8Array): void {
    const keep = HASH_LEN - 1;
    if (chunk.length >= keep) {
      this.tail = chunk.slice(chunk.length - keep);
    } else {
      const joined = new Uint8Array(Math.min(keep, this.tail.length + chunk.length));
      const fromTail = joined.length - chunk.length;
      joined.set(this.tail.subarray(this.tail.length - fromTail), 0);
      joined.set(chunk, fromTail);
      this.tail = joined;
    }
  }

  private scan(buf: Uint8Array): void {
    const end = buf.length - HASH_LEN;
    let i = 0;
    while (i <= end) {
      let j = HASH_LEN - 1;
      while (j >= 0 && IS_NIX32[buf[i + j]!] === 1) j--;
      if (j >= 0) {
        i += j + 1;
        continue;
      }
      if (this.prefix[(buf[i]! << 8) | buf[i + 1]!] === 1) {
        const s = String.fromCharCode.apply(null, buf.subarray(i, i + HASH_LEN) as unknown as number[]);
        if (this.candidates.has(s)) this.hits.add(s);
      }
      i++;
    }
  }
}

/**
 * Scan bytes for references: which of `candidatePaths` (full store paths)
 * have their hash part somewhere in `data`? Returns the matching paths, sorted.
 * @public
 */
export function scanBytesForReferences(data: Uint8Array | Iterable<Uint8Array>, candidatePaths: Iterable<string>): string[] {
  const byHash = hashPartIndex(candidatePaths);
  const scanner = new ReferenceScanner(byHash.keys());
  if (data instanceof Uint8Array) scanner.update(data);
  else for (const c of data) scanner.update(c);
  return resolveHits(scanner, byHash);
}

/** Map hash part → candidate paths (two names may share a hash part in theory). @public */
export function hashPartIndex(candidatePaths: Iterable<string>): Map<string, string[]> {
  const byHash = new Map<string, string[]>();
  for (const p of candidatePaths) {
    const base = p.slice(p.lastIndexOf("/") + 1);
    const h = base.slice(0, HASH_LEN);
    const list = byHash.get(h);
    if (list === undefined) byHash.set(h, [p]);
    else if (!list.includes(p)) list.push(p);
  }
  return byHash;
}

/** The candidate paths whose hash parts the scanner found, sorted. @public */
export function resolveHits(scanner: ReferenceScanner, byHash: ReadonlyMap<string, readonly string[]>): string[] {
  const out: string[] = [];
  for (const h of scanner.found()) out.push(...(byHash.get(h) ?? []));
  return out.sort();
}
