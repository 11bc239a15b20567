/**
 * NAR hashing on two threads: the calling thread walks the tree and reads
 * files (through its Host, so any Host works) straight into slots of a shared
 * ring buffer, while a helper thread runs the hash over the filled slots. On
 * large trees this hides the hashing time behind the I/O; the API stays
 * synchronous (the caller blocks with Atomics.wait, which Node allows).
 *
 * The helper is one lazily started, unref'd worker per process, reused by
 * every call. It only ever sees bytes, never the filesystem. A job is claimed
 * by exactly one side (compare-and-swap on OWNER): when the whole NAR fits in
 * the ring before the helper has claimed it (small paths, or the helper still
 * starting up), the caller hashes it itself and never waits for the helper;
 * when the ring is full and the helper has not claimed the job for a while,
 * the caller takes it over too. So a slow or missing helper costs nothing but
 * parallelism.
 */
import { createHash, type Hash as NodeHash } from "node:crypto";
import { Worker } from "node:worker_threads";
import { TsnixError } from "../errors.js";
import type { HostFs } from "../host/host.js";
import { Hash, HASH_SIZES, type HashAlgorithm } from "./hash.js";
import { NarWriter, dumpPathInto } from "./nar.js";

const SLOT = 1 << 20;
const SLOTS = 32;
// Control words (Int32 indices).
const PRODUCED = 0; // slots published, monotonic over the process
const CONSUMED = 1; // slots hashed, monotonic over the process
const OWNER = 2; // of the current job: 0 unclaimed, 1 helper, 2 caller, 3 helper done
const ALG = 3; // algorithm index of the current job
const FAILED = 4; // the helper hit an error
const CTL_BYTES = 64;
const DIGEST_BYTES = 64;
const LENS_OFF = CTL_BYTES + DIGEST_BYTES;
const DATA_OFF = LENS_OFF + SLOTS * 4 + 32; // keep data 16-byte aligned
const ALGS: readonly HashAlgorithm[] = ["md5", "sha1", "sha256", "sha512"];
/** How long a full ring may wait for the helper to claim a job before the caller takes it over. */
const CLAIM_PATIENCE_MS = 250;

// The helper, as a CommonJS script (eval'd, so bundling needs no extra entry point).
const HELPER = `
const { workerData } = require("node:worker_threads");
const { createHash } = require("node:crypto");
const { sab, SLOT, SLOTS, LENS_OFF, DATA_OFF, CTL_BYTES, ALGS } = workerData;
const ctl = new Int32Array(sab, 0, CTL_BYTES / 4);
const lens = new Int32Array(sab, LENS_OFF, SLOTS);
const data = new Uint8Array(sab, DATA_OFF, SLOTS * SLOT);
const digestOut = new Uint8Array(sab, CTL_BYTES, 64);
let h = null;
try {
  for (;;) {
    const c = Atomics.load(ctl, 1);
    const p = Atomics.load(ctl, 0);
    if (p === c) { Atomics.wait(ctl, 0, p); continue; }
    if (h === null) {
      // Claim the job, then re-read the counters: c and p may predate it.
      const owner = Atomics.compareExchange(ctl, 2, 0, 1);
      if (owner !== 0) { Atomics.wait(ctl, 1, c, 20); continue; }
      h = createHash(ALGS[Atomics.load(ctl, 3)]);
      continue;
    }
    const slot = c % SLOTS;
    const len = lens[slot];
    if (len < 0) {
      digestOut.set(h.digest());
      h = null;
      Atomics.store(ctl, 1, c + 1);
      Atomics.store(ctl, 2, 3);
      Atomics.notify(ctl, 2);
      Atomics.notify(ctl, 1);
    } else {
      h.update(data.subarray(slot * SLOT, slot * SLOT + len));
      Atomics.store(ctl, 1, c + 1);
      Atomics.notify(ctl, 1);
    }
  }
} catch (e) {
  Atomics.store(ctl, 4, 1);
  Atomics.notify(ctl, 1);
  Atomics.notify(ctl, 2);
}
`;

interface Ring {
  sab: SharedArrayBuffer;
  ctl: Int32Array;
  lens: Int32Array;
  slots: Uint8Array[];
  digest: Uint8Array;
  worker: Worker | undefined;
}

let ring: Ring | undefined;
let busy = false;
const stats = { jobs: 0, helperJobs: 0, takenOver: 0, ringFullMs: 0, ringFullWaits: 0, finishMs: 0 };

/** How many jobs ran, how many the helper hashed, how many the caller took over from a full ring (for tests and tuning). */
export function narHasherStats(): Readonly<typeof stats> {
  return { ...stats };
}

function getRing(): Ring {
  if (ring !== undefined) return ring;
  const sab = new SharedArrayBuffer(DATA_OFF + SLOTS * SLOT);
  const slots: Uint8Array[] = [];
  for (let i = 0; i < SLOTS; i++) slots.push(new Uint8Array(sab, DATA_OFF + i * SLOT, SLOT));
  ring = { sab, ctl: new Int32Array(sab, 0, CTL_BYTES / 4), lens: new Int32Array(sab, LENS_OFF, SLOTS), slots, digest: new Uint8Array(sab, CTL_BYTES, DIGEST_BYTES), worker: undefined };
  return ring;
}

/** Start the helper the first time a NAR outgrows one slot, so small paths never pay for a thread. */
function startHelper(r: Ring): void {
  if (r.worker !== undefined || Atomics.load(r.ctl, FAILED) !== 0) return;
  try {
    const w = new Worker(HELPER, { eval: true, workerData: { sab: r.sab, SLOT, SLOTS, LENS_OFF, DATA_OFF, CTL_BYTES, ALGS } });
    w.unref();
    // A helper that dies just stops claiming jobs; the caller then hashes alone.
    w.on("error", () => Atomics.store(r.ctl, FAILED, 1));
    r.worker = w;
  } catch {
    Atomics.store(r.ctl, FAILED, 1);
  }
}

class HelperError extends TsnixError {
  constructor() {
    super("store.nar-hasher-failed", "the NAR hashing helper thread failed");
  }
}

/**
 * Hash the NAR of `path` with the hashing on a helper thread; same result as
 * hashing {@link dumpPath}'s output. Falls back to one thread when re-entered.
 */
export function narHashPathParallel(fs: HostFs, path: string, algorithm: HashAlgorithm): { hash: Hash; size: number } | undefined {
  if (busy) return undefined;
  busy = true;
  try {
    const r = getRing();
    // A ring left unsettled by an earlier failure is not reused: hash on this thread.
    if (Atomics.load(r.ctl, CONSUMED) !== Atomics.load(r.ctl, PRODUCED)) return undefined;
    return run(r, fs, path, algorithm);
  } catch (e) {
    // The helper died mid-job: the caller starts over on its own thread.
    if (e instanceof HelperError) return undefined;
    throw e;
  } finally {
    busy = false;
  }
}

function run(r: Ring, fs: HostFs, path: string, algorithm: HashAlgorithm): { hash: Hash; size: number } {
  const { ctl, lens, slots } = r;
  stats.jobs++;
  const start = Atomics.load(ctl, PRODUCED);
  Atomics.store(ctl, ALG, ALGS.indexOf(algorithm));
  // Jobs are claimed only when slots are pending, and none are now: safe to reset.
  Atomics.store(ctl, OWNER, 0);
  let produced = start;
  let mine: NodeHash | undefined; // set once the caller owns the job
  const helperAlive = () => Atomics.load(ctl, FAILED) === 0;

  const claim = (): boolean => {
    if (mine !== undefined) return true;
    if (Atomics.compareExchange(ctl, OWNER, 0, 2) !== 0) return false;
    mine = createHash(algorithm);
    // Hash whatever the helper never touched, then keep going alone.
    for (let c = Atomics.load(ctl, CONSUMED); c < produced; c++) mine.update(slots[c % SLOTS]!.subarray(0, lens[c % SLOTS]!));
    Atomics.store(ctl, CONSUMED, produced);
    return true;
  };

  /** Wait until a slot is free; take the job over if the helper does not show up. */
  const freeSlot = (): void => {
    let waited = 0;
    for (;;) {
      const c = Atomics.load(ctl, CONSUMED);
      if (produced - c < SLOTS) return;
      const owner = Atomics.load(ctl, OWNER);
      if (owner === 0 && (waited >= CLAIM_PATIENCE_MS || !helperAlive()) && claim()) {
        stats.takenOver++;
        return;
      }
      if (owner === 1 && !helperAlive()) throw new HelperError();
      const t0 = performance.now();
      Atomics.wait(ctl, CONSUMED, c, 50);
      const dt = performance.now() - t0;
      waited += dt;
      stats.ringFullMs += dt;
      stats.ringFullWaits++;
    }
  };

  const publish = (len: number): void => {
    startHelper(r);
    lens[produced % SLOTS] = len;
    produced++;
    Atomics.store(ctl, PRODUCED, produced);
    Atomics.notify(ctl, PRODUCED);
  };

  const w = new NarWriter(slots[produced % SLOTS]!, (buf, len) => {
    if (mine !== undefined) {
      mine.update(buf.subarray(0, len));
      return buf;
    }
    publish(len);
    freeSlot();
    return mine !== undefined ? slots[0]! : slots[produced % SLOTS]!;
  });
  // The first buffer must be free too (the ring is empty at the start of a job).
  let size: number;
  try {
    dumpPathInto(fs, path, w, false);
    // A NAR that fits in one slot is hashed right here.
    if (mine === undefined && produced === start) claim();
    w.flush();
    size = w.total;
  } catch (e) {
    // Leave the ring consistent for the next job: the helper (if it owns the
    // job) must see an end marker; otherwise just drop the pending slots.
    abandon(r, produced, mine !== undefined);
    throw e;
  }
  if (mine !== undefined || claim()) return { hash: new Hash(algorithm, new Uint8Array(mine!.digest())), size };
  // The helper owns the job: send the end marker and wait for the digest.
  freeSlot();
  if (mine !== undefined) return { hash: new Hash(algorithm, new Uint8Array((mine as NodeHash).digest())), size };
  publish(-1);
  const f0 = performance.now();
  for (;;) {
    const o = Atomics.load(ctl, OWNER);
    if (o === 3) break;
    if (!helperAlive()) throw new HelperError();
    Atomics.wait(ctl, OWNER, o, 50);
  }
  stats.helperJobs++;
  stats.finishMs += performance.now() - f0;
  return { hash: new Hash(algorithm, r.digest.slice(0, HASH_SIZES[algorithm])), size };
}

function abandon(r: Ring, produced: number, callerOwned: boolean): void {
  const { ctl } = r;
  if (callerOwned || Atomics.compareExchange(ctl, OWNER, 0, 2) === 0) {
    Atomics.store(ctl, CONSUMED, produced);
    return;
  }
  // Helper owns it: wait for a free slot, send an end marker, wait for it to finish.
  for (let i = 0; i < 200 && produced - Atomics.load(ctl, CONSUMED) >= SLOTS && Atomics.load(ctl, FAILED) === 0; i++) Atomics.wait(ctl, CONSUMED, Atomics.load(ctl, CONSUMED), 50);
  r.lens[produced % SLOTS] = -1;
  Atomics.store(ctl, PRODUCED, produced + 1);
  Atomics.notify(ctl, PRODUCED);
  for (let i = 0; i < 200 && Atomics.load(ctl, OWNER) !== 3 && Atomics.load(ctl, FAILED) === 0; i++) Atomics.wait(ctl, OWNER, Atomics.load(ctl, OWNER), 50);
}
