import type { CliContext } from "../../src/cli/context.js";
import { main } from "../../src/cli/main.js";
import type { Host } from "../../src/host/host.js";

export interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

/** Run the tsnix CLI in-process against `host`. */
export async function tsnix(host: Host, args: string[], options: { cwd?: string; env?: Record<string, string> } = {}): Promise<Run> {
  let out = "";
  let err = "";
  const dec = new TextDecoder();
  const ctx: CliContext = {
    host,
    settings: new Map(),
    stdout: (t) => void (out += typeof t === "string" ? t : dec.decode(t)),
    stderr: (t) => void (err += typeof t === "string" ? t : dec.decode(t)),
    readStdin: async () => new Uint8Array(0),
    stdinChunks: async function* () {},
    env: (n) => options.env?.[n],
    cwd: options.cwd ?? "/",
  };
  const status = await main(args, ctx);
  return { status, stdout: out, stderr: err };
}
