import { TsnixError } from "../errors.js";
import type { CliContext } from "./context.js";

export async function instantiateCommand(_args: string[], _ctx: CliContext): Promise<number> {
  throw new TsnixError("unimplemented", "'tsnix instantiate' is not implemented yet");
}
