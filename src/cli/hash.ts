import { TsnixError } from "../errors.js";
import type { CliContext } from "./context.js";

export async function hashCommand(_args: string[], _ctx: CliContext): Promise<number> {
  throw new TsnixError("unimplemented", "'tsnix hash' is not implemented yet");
}
