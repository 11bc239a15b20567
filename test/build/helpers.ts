import type { LocalStore } from "../../src/store/local-store.js";
import { type Derivation, derivationReferences, finalizeDerivation, parseDerivation, printDerivation } from "../../src/store/derivation.js";

/** Write a derivation into the store as `nix-instantiate` would; returns its path and the finished derivation. */
export function addDerivation(
  store: LocalStore,
  d: { name: string; builder: string; args?: string[]; env?: Record<string, string>; outputs?: string[]; inputDrvs?: Record<string, string[]>; inputSrcs?: string[]; system?: string; fixed?: { hashAlgo: string; hash: string } },
): { drvPath: string; drv: Derivation; out: string } {
  const outputs = d.outputs ?? ["out"];
  const env = new Map<string, string>([["builder", d.builder], ["name", d.name], ["system", d.system ?? "x86_64-linux"], ["outputs", outputs.join(" ")], ...Object.entries(d.env ?? {})]);
  if (d.fixed !== undefined) {
    env.set("outputHashAlgo", d.fixed.hashAlgo.replace(/^r:/, ""));
    env.set("outputHashMode", d.fixed.hashAlgo.startsWith("r:") ? "recursive" : "flat");
    env.set("outputHash", d.fixed.hash);
  }
  const load = (p: string) => parseDerivation(store.host.fs.readFile(store.toRealPath(p)), store.storeDir, { name: p.slice(44, -4), path: p });
  const drv = finalizeDerivation(
    {
      name: d.name,
      outputs: new Map(outputs.map((o) => [o, d.fixed !== undefined ? { hashAlgo: d.fixed.hashAlgo, hash: d.fixed.hash } : {}])),
      inputDrvs: new Map(Object.entries(d.inputDrvs ?? {})),
      inputSrcs: d.inputSrcs ?? [],
      system: d.system ?? "x86_64-linux",
      builder: d.builder,
      args: d.args ?? [],
      env,
    },
    load,
  );
  const drvPath = store.addTextToStore(`${d.name}.drv`, printDerivation(drv), derivationReferences(drv));
  return { drvPath, drv, out: drv.outputs.get(outputs[0]!)!.path };
}
