import { TsnixError } from "../errors.js";
import type { CliContext } from "./context.js";

export async function storeCommand(_args: string[], _ctx: CliContext): Promise<number> {
  throw new TsnixError("unimplemented", "'tsnix store' is not implemented yet");
}
