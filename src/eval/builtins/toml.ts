/**
 * builtins.fromTOML, on smol-toml (TOML 1.0) with Nix 2.8's mapping:
 * tables → sets, arrays → lists, integers → ints, floats (inf, nan too) →
 * floats, and dates/times rejected with Nix's "Dates and times are not
 * supported". Parse errors are "while parsing a TOML string: …"; the detail
 * after the colon is smol-toml's, not toml11's (Nix 2.8's multi-line toml11
 * diagnostics are not reproduced).
 */
import { createRequire } from "node:module";
import type * as SmolToml from "smol-toml";
import { defineBuiltin } from "./index.js";
import { forceStringNoCtx } from "./no-context.js";
import { NixAttrs, NixFloat, mkInt } from "../value.js";
import type { LazyValue, NixList, Value } from "../value.js";
import { TsnixError } from "../../errors.js";
import { cString } from "./json.js";

/** TOML text that Nix's fromTOML rejects. @public */
export class TomlParseError extends TsnixError {
  constructor(message: string, data: Readonly<Record<string, unknown>> = {}) {
    super("eval.toml-parse", `while parsing a TOML string: ${message}`, data);
  }
}

// Loaded on first use: the parser's modules cost start-up time for every evaluation otherwise.
let toml: typeof SmolToml | undefined;
function smolToml(): typeof SmolToml {
  return (toml ??= createRequire(import.meta.url)("smol-toml") as typeof SmolToml);
}

const INT64_MAX = 9223372036854775807n;
const INT64_MIN = -9223372036854775808n;

function convert(x: unknown): Value {
  switch (typeof x) {
    case "boolean":
      return x;
    case "string":
      return cString(x);
    case "bigint":
      // toml11 reads integers with strtoll semantics: out of range saturates.
      return mkInt(x > INT64_MAX ? INT64_MAX : x < INT64_MIN ? INT64_MIN : x);
    case "number":
      return new NixFloat(x);
  }
  if (Array.isArray(x)) {
    const out: NixList = new Array(x.length);
    for (let i = 0; i < x.length; i++) out[i] = convert(x[i]);
    return out;
  }
  if (x instanceof smolToml().TomlDate || x instanceof Date) throw new TomlParseError("Dates and times are not supported");
  if (typeof x === "object" && x !== null) {
    const map = new Map<string, LazyValue>();
    for (const k of Object.keys(x)) map.set(k, convert((x as Record<string, unknown>)[k]));
    return new NixAttrs(map);
  }
  throw new TomlParseError("unsupported TOML value");
}

/** Parse TOML text into a Nix value (throws {@link TomlParseError}). @public */
export function fromTOML(text: string): Value {
  let doc: unknown;
  try {
    // Every integer as a bigint, so ints and floats stay apart (`1` vs `1.0`).
    doc = smolToml().parse(text, { integersAsBigInt: true });
  } catch (e) {
    if (e instanceof smolToml().TomlError) {
      const first = e.message.split("\n")[0] ?? e.message;
      throw new TomlParseError(`[error] ${first}`, { line: e.line, column: e.column });
    }
    throw e;
  }
  return convert(doc);
}

defineBuiltin(
  "fromTOML",
  1,
  ([s], ctx) => {
    const text = forceStringNoCtx(ctx, s!);
    try {
      return fromTOML(text);
    } catch (e) {
      if (e instanceof TomlParseError) throw ctx.error(e.message, e.data);
      throw e;
    }
  },
  { global: true },
);
