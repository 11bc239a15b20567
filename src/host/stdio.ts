/**
 * The CLI's standard output and error, written straight to file descriptors
 * 1 and 2.
 *
 * Node creates `process.stdout`/`process.stderr` on first use, which costs
 * about 2 ms each (type detection, a stream, for a pipe a socket object):
 * more than a short command such as `env --rollback` does. A synchronous
 * write to the descriptor is what those streams do on Linux anyway (files,
 * terminals and pipes all write synchronously there), so ordering with other
 * code that uses the streams directly (traces, progress lines) is kept. A
 * descriptor opened non-blocking by the parent can refuse a write (EAGAIN);
 * from then on that descriptor goes through Node's stream, which queues.
 */
import { writeSync } from "node:fs";

type Sink = (data: string | Uint8Array) => void;

const fallback: Array<NodeJS.WriteStream | undefined> = [undefined, undefined, undefined];

function streamFor(fd: 1 | 2): NodeJS.WriteStream {
  let s = fallback[fd];
  if (s === undefined) {
    s = fd === 1 ? process.stdout : process.stderr;
    // A reader that went away (`tsnix … | head`) ends the command quietly, as
    // Nix does; without a listener the stream's EPIPE would be thrown.
    if (fd === 1) s.on("error", (e: { code?: string }) => void (e.code === "EPIPE" ? process.exit(0) : undefined));
    fallback[fd] = s;
  }
  return s;
}

function errnoCode(e: unknown): string | undefined {
  return typeof e === "object" && e !== null && "code" in e ? String((e as { code: unknown }).code) : undefined;
}

/** A writer for standard output (1) or error (2). */
export function stdioWriter(fd: 1 | 2): Sink {
  return (data) => {
    const s = fallback[fd];
    if (s !== undefined) {
      s.write(data);
      return;
    }
    const buf = typeof data === "string" ? Buffer.from(data) : data;
    let off = 0;
    try {
      while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    } catch (e) {
      const code = errnoCode(e);
      if (code === "EAGAIN") {
        streamFor(fd).write(buf.subarray(off));
        return;
      }
      if (code === "EPIPE") {
        if (fd === 1) process.exit(0);
        return;
      }
      throw e;
    }
  };
}

/** Whether output handed to a fallback stream is still waiting to be written. */
export function stdioPending(): boolean {
  return (fallback[1]?.writableLength ?? 0) > 0 || (fallback[2]?.writableLength ?? 0) > 0;
}
