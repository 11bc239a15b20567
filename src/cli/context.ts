import type { Host } from "../host/host.js";
import { nodeHost } from "../host/node-host.js";
import { stdioWriter } from "../host/stdio.js";

/**
 * What a CLI command needs from its surroundings. Tests pass a memory host and
 * capture output; the real binary passes the node host and process streams.
 */
export interface CliContext {
  readonly host: Host;
  /** Settings from `--store` (key "store") and `--option NAME VALUE`. */
  readonly settings: Map<string, string>;
  stdout(text: string | Uint8Array): void;
  stderr(text: string | Uint8Array): void;
  /** Standard input, read whole (for `--restore`). */
  readStdin(): Promise<Uint8Array>;
  /** Standard input as a stream of chunks. */
  stdinChunks(): AsyncIterable<Uint8Array>;
  /** Standard output as a sink for large binary output (`--dump`). */
  env(name: string): string | undefined;
  readonly cwd: string;
}

export function defaultCliContext(): CliContext {
  const host = nodeHost();
  return {
    host,
    settings: new Map(),
    stdout: stdioWriter(1),
    stderr: stdioWriter(2),
    async readStdin() {
      const chunks: Uint8Array[] = [];
      for await (const c of process.stdin) chunks.push(c as Uint8Array);
      return Buffer.concat(chunks);
    },
    stdinChunks: () => process.stdin as AsyncIterable<Uint8Array>,
    env: (n) => process.env[n],
    cwd: process.cwd(),
  };
}
