/** Printing plain results in nix-instantiate's syntax, for tests of the pure modules (no evaluator needed). */
export function nixStr(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '"') out += '\\"';
    else if (c === "\\") out += "\\\\";
    else if (c === "\n") out += "\\n";
    else if (c === "\r") out += "\\r";
    else if (c === "\t") out += "\\t";
    else if (c === "$" && s[i + 1] === "{") out += "\\$";
    else out += c;
  }
  return out + '"';
}

export type Printable = null | boolean | number | bigint | string | Printable[];

export function nixPrint(v: Printable): string {
  if (v === null) return "null";
  if (typeof v === "boolean") return v ? "true" : "false";
  if (typeof v === "number" || typeof v === "bigint") return String(v);
  if (typeof v === "string") return nixStr(v);
  return v.length === 0 ? "[ ]" : "[ " + v.map(nixPrint).join(" ") + " ]";
}
