/**
 * `tsnix copy`: move closures between the local store and binary caches or
 * other local stores, as `nix copy` does.
 *
 *   tsnix copy --to file:///DIR[?compression=xz&secret-key=FILE] [--sign-key FILE] PATHS…
 *   tsnix copy --to /OTHER/STORE/ROOT PATHS…
 *   tsnix copy --from file:///DIR|http://… [--no-check-sigs] PATHS…
 */
import { posix } from "node:path";
import { UsageError } from "../errors.js";
import { readText } from "../host/util.js";
import { BinaryCache, copyFromCache, copyToCache, pathInfoTrusted } from "../build/binary-cache.js";
import { SubstituteError } from "../build/errors.js";
import { LocalStore } from "../store/local-store.js";
import { type SecretKey, parseSecretKey } from "../store/signature.js";
import { resolveStoreRoot } from "../store/store-root.js";
import type { CliContext } from "./context.js";
import { buildSettingsFrom } from "../build/settings.js";
import { effectiveSettings } from "./settings.js";
import { storeFromContext } from "./store.js";

/** `tsnix copy`. */
export async function copyCommand(args: string[], ctx: CliContext): Promise<number> {
  let to: string | undefined;
  let from: string | undefined;
  let checkSigs = true;
  const keyFiles: string[] = [];
  const paths: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const value = () => {
      const v = args[++i];
      if (v === undefined) throw new UsageError(`flag '${a}' requires 1 argument`);
      return v;
    };
    if (a === "--to") to = value();
    else if (a === "--from") from = value();
    else if (a === "--sign-key" || a === "--secret-key") keyFiles.push(value());
    else if (a === "--no-check-sigs") checkSigs = false;
    else if (a.startsWith("-") && a.length > 1) throw new UsageError(`unrecognised flag '${a}'`);
    else paths.push(a);
  }
  if ((to === undefined) === (from === undefined)) throw new UsageError("'tsnix copy' needs exactly one of '--to' and '--from'");
  const store = storeFromContext(ctx);
  const resolve = (p: string): string => {
    let abs = posix.resolve(ctx.cwd, p);
    if (!abs.startsWith(`${store.storeDir}/`)) {
      try {
        if (ctx.host.fs.lstat(abs).type === "symlink") abs = ctx.host.fs.readlink(abs);
      } catch {
        /* taken as given */
      }
    }
    store.parseStorePath(abs);
    return abs;
  };
  const eff = effectiveSettings(ctx, store.root);
  const s = buildSettingsFrom(eff.pairs, ctx.host.cpuCount());
  // As Nix's daemon: only a trusted user may skip the signature check.
  const requireSigs = (checkSigs || !eff.trusted) && s.requireSigs;
  // nix copy announces how many paths it will copy (0 too), then each one.
  const plan = (todo: readonly string[]) => ctx.stderr(`copying ${todo.length} paths...\n`);
  if (from !== undefined) {
    const cache = new BinaryCache(from, { host: ctx.host, onWarning: (m) => ctx.stderr(`warning: ${m}\n`) });
    const wanted = paths.map((p) => {
      const abs = posix.resolve(ctx.cwd, p);
      store.parseStorePath(abs);
      return abs;
    });
    await copyFromCache(
      { store, cache, trustedPublicKeys: s.trustedPublicKeys, requireSigs, onPlan: plan, onCopy: (p) => ctx.stderr(`copying path '${p}' from '${cache.base}'...\n`) },
      wanted,
    );
    return 0;
  }
  const wanted = paths.map(resolve);
  for (const p of wanted) store.queryPathInfo(p);
  if (/^(file|https?):\/\//.test(to!)) {
    const cache = new BinaryCache(to!, { host: ctx.host });
    const keys: SecretKey[] = [];
    const fromUrl = cache.params.get("secret-key");
    for (const f of [...(fromUrl === null ? [] : [fromUrl]), ...keyFiles]) keys.push(parseSecretKey(readText(ctx.host.fs, posix.resolve(ctx.cwd, f)).trim()));
    await copyToCache({ store, cache, secretKeys: keys, onPlan: plan, onCopy: (p) => ctx.stderr(`copying path '${p}' to '${cache.base}'...\n`) }, wanted);
    return 0;
  }
  // Another local store (Nix calls it 'local'): its signature check is the same as any local store's.
  const root = resolveStoreRoot({ store: to, env: () => undefined, home: ctx.host.user().home, cwd: ctx.cwd });
  const dest = new LocalStore({ host: ctx.host, root });
  const todo = store
    .topoSortPaths(store.computeClosure(wanted))
    .reverse()
    .filter((p) => !dest.isValidPath(p));
  plan(todo);
  for (const p of todo) {
    const info = store.queryPathInfo(p);
    ctx.stderr(`copying path '${p}' to 'local'...\n`);
    if (requireSigs && !pathInfoTrusted(info, s.trustedPublicKeys, store.storeDir))
      throw new SubstituteError("cache.untrusted", `cannot add path '${p}' because it lacks a valid signature`, { path: p });
    const chunks: Uint8Array[] = [];
    store.dumpPath(p, (c) => void chunks.push(c.slice()));
    dest.addFromNar(chunks, { path: p, narHash: info.narHash, narSize: info.narSize, references: info.references, deriver: info.deriver, sigs: info.sigs, ca: info.ca });
  }
  return 0;
}
