/**
 * Builtins that read files or add them to the store, as Nix 2.8:
 * readFile, readDir, pathExists, path, filterSource, storePath, hashFile,
 * toFile.
 */
import { canonPath } from "../../host/util.js";
import { EvalError, NixError } from "../errors.js";
import { HostError, TsnixError, describeErrno } from "../../errors.js";
import { createHasher, parseHashAlgorithm, type HashAlgorithm } from "../../store/hash.js";
import { makeFixedOutputPath } from "../../store/store-path.js";
import { NixAttrs, NixPath, NixString, contextOf, isFunction, stringOf, type LazyValue, type Value } from "../value.js";
import { defineBuiltin, type BuiltinContext } from "./index.js";
import { Scope } from "../evaluator.js";
import { parse } from "../parser.js";
import { decodeContextElement, forceStringNoCtx } from "./context.js";
import { parseHashAllowEmpty } from "./derivation.js";
import { baseNameOf, evalStoreOf, fileType, importDerivationFile, type PathFilter } from "./store-bridge.js";

/** Nix's coerceToPath: a path, or a string holding an absolute path (context kept). */
export function coerceToPath(ctx: BuiltinContext, v: LazyValue): { path: string; context: ReadonlySet<string> } {
  const s = ctx.coerceToString(v, { copyToStore: false });
  const path = stringOf(s);
  if (path === "" || path[0] !== "/") throw ctx.error(`string '${path}' doesn't represent an absolute path`);
  return { path, context: contextOf(s) };
}

/**
 * Make the store paths a string refers to available (building derivation
 * outputs: import from derivation) and return where the path is on the host
 * (Nix's realisePath).
 */
export function realisePath(ctx: BuiltinContext, v: LazyValue): string {
  let coerced: { path: string; context: ReadonlySet<string> };
  try {
    coerced = coerceToPath(ctx, v);
  } catch (e) {
    if (e instanceof NixError) e.addTrace(ctx.pos, "while realising the context of a path");
    throw e;
  }
  const { path, context } = coerced;
  const store = evalStoreOf(ctx.state);
  if (context.size === 0) return path;
  try {
    for (const c of context) {
      const e = decodeContextElement(c);
      // As Nix's InvalidPathError: no position of its own, the call is a trace frame.
      if (!store.isValidPath(e.path)) throw new EvalError(`path '${e.path}' is not valid`, { code: "eval.invalid-path", data: { path: e.path } });
      if (e.kind === "output") store.realise(e.path, [e.output]);
    }
  } catch (e) {
    if (e instanceof NixError) e.addTrace(ctx.pos, `while realising the context of path '${path}'`);
    throw e;
  }
  return store.realPath(path);
}

/** A failed system call, as Nix's SysError: the message names the call and path; no position. */
function sysError(ctx: BuiltinContext, e: unknown, what: string): never {
  if (e instanceof HostError) throw new EvalError(`${what}: ${describeErrno(e.errno)}`, { code: "eval.sys", data: { errno: e.errno }, cause: e });
  throw e;
}

function rethrowWithTrace(e: unknown, ctx: BuiltinContext, msg: string): never {
  if (e instanceof NixError) e.addTrace(ctx.pos, msg);
  throw e;
}

/** Read a file as Nix reads into a string: bytes kept one-to-one as Latin-1 characters would lose UTF-8, so decode as UTF-8. */
const decoder = new TextDecoder("utf-8");

defineBuiltin("readFile", 1, ([p], ctx) => {
  const path = realisePath(ctx, p!);
  let bytes: Uint8Array;
  try {
    bytes = ctx.host.fs.readFile(path);
  } catch (e) {
    if (e instanceof HostError && e.errno === "EISDIR") throw ctx.error("reading from file: Is a directory");
    sysError(ctx, e, `opening file '${path}'`);
  }
  if (bytes.includes(0)) throw ctx.error(`the contents of the file '${path}' cannot be represented as a Nix string`);
  const s = decoder.decode(bytes);
  const store = evalStoreOf(ctx.state);
  const logical = stringOf(ctx.coerceToString(p!, { copyToStore: false }));
  if (store.isInStore(logical)) {
    const sp = store.toStorePath(logical);
    if (store.isValidPath(sp)) {
      const refs = store.references(sp);
      if (refs.length > 0) return new NixString(s, new Set(refs));
    }
  }
  return s;
});

defineBuiltin("readDir", 1, ([p], ctx) => {
  const path = realisePath(ctx, p!);
  const fs = ctx.host.fs;
  let names: string[];
  try {
    names = fs.readdir(path);
  } catch (e) {
    sysError(ctx, e, `opening directory '${path}'`);
  }
  const m = new Map<string, LazyValue>();
  for (const n of names) m.set(n, fileType(fs, `${path}/${n}`));
  return new NixAttrs(m);
});

defineBuiltin("pathExists", 1, ([p], ctx) => {
  const path = realisePath(ctx, p!);
  try {
    ctx.host.fs.lstat(path);
    return true;
  } catch {
    return false;
  }
});

defineBuiltin("hashFile", 2, ([t, p], ctx) => {
  const type = forceStringNoCtx(ctx, t!);
  let algo: HashAlgorithm;
  try {
    algo = parseHashAlgorithm(type);
  } catch {
    throw new EvalError(`unknown hash algorithm '${type}'`);
  }
  const path = realisePath(ctx, p!);
  let bytes: Uint8Array;
  try {
    bytes = ctx.host.fs.readFile(path);
  } catch (e) {
    sysError(ctx, e, `opening file '${path}'`);
  }
  const h = createHasher(algo);
  h.update(bytes);
  return h.digest().toBase16();
});

defineBuiltin("toFile", 2, ([n, c], ctx) => {
  const name = forceStringNoCtx(ctx, n!);
  const contents = ctx.forceStringValue(c!);
  const refs: string[] = [];
  for (const x of contextOf(contents)) {
    if (x[0] !== "/") throw ctx.error(`in 'toFile': the file named '${name}' must not contain a reference to a derivation but contains (${x})`);
    refs.push(x);
  }
  const store = evalStoreOf(ctx.state);
  let sp: string;
  try {
    sp = store.addText(name, stringOf(contents), refs);
  } catch (e) {
    if (e instanceof TsnixError && !(e instanceof NixError)) throw new EvalError(e.message, { code: e.code, cause: e });
    throw e;
  }
  return new NixString(sp, new Set([sp]));
});

defineBuiltin("storePath", 1, ([p], ctx) => {
  const { path: p0, context } = coerceToPath(ctx, p!);
  const store = evalStoreOf(ctx.state);
  let path = p0;
  if (!store.isStorePath(path)) path = resolvePath(ctx, path);
  if (!store.isInStore(path)) throw ctx.error(`path '${path}' is not in the Nix store`);
  const sp = store.toStorePath(path);
  // Outside read-only mode Nix makes sure the path exists (tsnix has no substituters during evaluation).
  if (!store.readOnly && !store.isValidPath(sp)) throw new EvalError(`path '${sp}' does not exist and cannot be created`);
  const out = new Set(context);
  out.add(sp);
  return new NixString(path, out);
});

/** Nix's canonPath(p, resolveSymlinks = true): every component must exist; symlinks are followed. */
function resolvePath(ctx: BuiltinContext, p: string): string {
  const todo = p.split("/").filter((x) => x !== "" && x !== ".");
  const out: string[] = [];
  let followed = 0;
  while (todo.length > 0) {
    const c = todo.shift()!;
    if (c === "..") {
      out.pop();
      continue;
    }
    out.push(c);
    const cur = "/" + out.join("/");
    let st;
    try {
      st = ctx.host.fs.lstat(cur);
    } catch (e) {
      sysError(ctx, e, `getting status of '${cur}'`);
    }
    if (st.type === "symlink") {
      if (++followed > 1024) throw ctx.error(`infinite symlink recursion in path '${p}'`);
      const target = ctx.host.fs.readlink(cur);
      out.pop();
      if (target.startsWith("/")) out.length = 0;
      todo.unshift(...target.split("/").filter((x) => x !== "" && x !== "."));
    }
  }
  return "/" + out.join("/");
}


/** Nix's addPath (behind `builtins.path` and `filterSource`). */
function addPath(
  ctx: BuiltinContext,
  name: string,
  path0: string,
  context: ReadonlySet<string>,
  filterFun: Value | undefined,
  recursive: boolean,
  expected: ReturnType<typeof parseHashAllowEmpty> | undefined,
): Value {
  let path = path0;
  try {
    const store = evalStoreOf(ctx.state);
    for (const c of context) {
      const e = decodeContextElement(c);
      if (!store.isValidPath(e.path)) throw ctx.error(`path '${e.path}' is not valid`);
      if (e.kind === "output") store.realise(e.path, [e.output]);
    }
    let refs: readonly string[] = [];
    if (store.isInStore(path)) {
      const sp = store.toStorePath(path);
      if (store.isValidPath(sp)) refs = store.references(sp);
    }
    if (context.size > 0 || store.isInStore(path)) path = store.realPath(path);
    const filter: PathFilter | undefined =
      filterFun === undefined ? undefined : (p, type) => ctx.forceBool(ctx.callFunction(filterFun, [p, type]));
    let expectedPath: string | undefined;
    if (expected !== undefined) expectedPath = makeFixedOutputPath(name, recursive ? "recursive" : "flat", expected, [], false, store.storeDir);
    if (expectedPath !== undefined && store.isValidPath(expectedPath)) return new NixString(expectedPath, new Set([expectedPath]));
    try {
      ctx.host.fs.lstat(path);
    } catch (e) {
      sysError(ctx, e, `getting status of '${path}'`);
    }
    let dst: string;
    try {
      dst = store.addPath(path, name, recursive, filter, refs);
    } catch (e) {
      if (e instanceof HostError) sysError(ctx, e, `getting status of '${(e.data as { path?: string }).path ?? path}'`);
      if (e instanceof TsnixError && !(e instanceof NixError)) throw new EvalError(e.message, { code: e.code, cause: e });
      throw e;
    }
    if (expectedPath !== undefined && expectedPath !== dst) throw new EvalError(`store path mismatch in (possibly filtered) path added from '${path}'`);
    return new NixString(dst, new Set([dst]));
  } catch (e) {
    rethrowWithTrace(e, ctx, `while adding path '${path}'`);
  }
}

defineBuiltin("path", 1, ([a], ctx) => {
  const attrs = ctx.forceAttrs(a!);
  let path: { path: string; context: ReadonlySet<string> } | undefined;
  let name = "";
  let filterFun: Value | undefined;
  let recursive = true;
  let expected: ReturnType<typeof parseHashAllowEmpty> | undefined;
  for (const n of attrs.names()) {
    const v = attrs.get(n)!;
    if (n === "path") path = coerceToPath(ctx, v);
    else if (n === "name") name = forceStringNoCtx(ctx, v);
    else if (n === "filter") filterFun = ctx.force(v);
    else if (n === "recursive") recursive = ctx.forceBool(v);
    else if (n === "sha256") expected = parseHashAllowEmpty(ctx, forceStringNoCtx(ctx, v), "sha256");
    else throw new EvalError(`unsupported argument '${n}' to 'addPath'`, { pos: attrs.pos(n) ?? ctx.pos });
  }
  if (path === undefined) throw ctx.error("'path' required");
  if (name === "") name = baseNameOf(path.path);
  return addPath(ctx, name, path.path, path.context, filterFun, recursive, expected);
});

defineBuiltin("filterSource", 2, ([f, p], ctx) => {
  const fv = ctx.force(f!);
  const { path, context } = coerceToPath(ctx, p!);
  if (!isFunction(fv) && !(fv instanceof NixAttrs && fv.has("__functor")))
    throw ctx.error(`first argument in call to 'filterSource' is not a function but ${showTypeOf(fv)}`);
  return addPath(ctx, baseNameOf(path), path, context, fv, true, undefined);
});

function showTypeOf(v: Value): string {
  if (v === null) return "null";
  if (typeof v === "string" || v instanceof NixString) return "a string";
  if (typeof v === "boolean") return "a Boolean";
  if (typeof v === "number" || typeof v === "bigint") return "an integer";
  if (v instanceof NixPath) return "a path";
  if (Array.isArray(v)) return "a list";
  if (v instanceof NixAttrs) return "a set";
  return "a float";
}

/**
 * What `scopedImport` needs from the evaluator: evaluate a file with extra
 * names in scope, shadowing the builtins (never cached, unlike `import`).
 * An evaluator provides it as `importScoped`; see {@link scopedImportFallback}.
 * @public
 */
export type ImportScoped = (path: string, scope: NixAttrs) => Value;

/**
 * Until the evaluator has `importScoped`, compile against its base scope
 * directly: the names of `scope` form one scope above the globals, as Nix's
 * `staticEnv(false, &staticBaseEnv)` over `baseEnv`.
 */
function scopedImportFallback(ctx: BuiltinContext): ImportScoped | undefined {
  const st = ctx.state as unknown as { globalScope?: Scope; baseEnv?: unknown[]; compiler?: { compile(e: unknown, s: Scope): { ev: (env: unknown[]) => Value } } };
  const { globalScope, baseEnv, compiler } = st;
  if (globalScope === undefined || baseEnv === undefined || compiler === undefined) return undefined;
  return (path, scope) => {
    const fs = ctx.host.fs;
    let p = path;
    try {
      if (fs.stat(p).type === "directory") p = `${p}/default.nix`;
    } catch (e) {
      sysError(ctx, e, `getting status of '${p}'`);
    }
    let text: string;
    try {
      text = decoder.decode(fs.readFile(p));
    } catch (e) {
      sysError(ctx, e, `opening file '${p}'`);
    }
    const names = scope.names();
    const expr = parse(text, { file: p, baseDir: p.slice(0, p.lastIndexOf("/")) || "/", home: ctx.host.env("HOME") });
    const code = compiler.compile(expr, new Scope(globalScope, names)).ev;
    return code([baseEnv, ...names.map((n) => scope.get(n))]);
  };
}

defineBuiltin(
  "scopedImport",
  2,
  ([s, p], ctx) => {
    const scope = ctx.forceAttrs(s!);
    const v = ctx.force(p!);
    const path = v instanceof NixPath ? v.path : realisePath(ctx, v);
    // A store derivation is imported as its derivation value, scope or not (as Nix's import).
    const drv = importDerivationFile(ctx.state, path);
    if (drv !== undefined) return drv;
    const own = (ctx.state as unknown as { importScoped?: ImportScoped }).importScoped;
    const run = own !== undefined ? own.bind(ctx.state) : scopedImportFallback(ctx);
    if (run === undefined) throw ctx.error("scopedImport is not supported by this evaluator");
    return run(path, scope);
  },
  { global: true },
);
