/**
 * tsnix: Nix and NixOS-style system generations as an embeddable TypeScript library.
 *
 * @packageDocumentation
 */

/** The version of tsnix. @public */
export const version = "0.1.0";

// --- foundation: errors and hosts ---
export { TsnixError, HostError, UsageError, FormatError, SimulatedCrash, describeErrno, isErrno, type ErrorData } from "./errors.js";
export type { FileStat, FileType, Host, HostFs, HostLock, HostProcess, OpenFlags, SpawnOptions, StdioMode } from "./host/host.js";
export { nodeHost } from "./host/node-host.js";
export { memoryHost, type MemoryHost, type MemoryHostOptions, type MemoryProgram, type MemoryProgramContext } from "./host/memory-host.js";
export { faultHost, type FaultHost, type FaultPlan } from "./host/fault-host.js";
export { readText, writeFileAtomic, syncDir, mkdirp, pathExists, statIfExists, lstatIfExists, joinPath, dirname, basename } from "./host/util.js";

// --- store formats: hashes, Nix base-32, store paths, derivations ---
export { encodeNix32, decodeNix32, nix32EncodedLength, NIX32_ALPHABET, InvalidNix32Error } from "./store/nix32.js";
export {
  Hash,
  type HashAlgorithm,
  type HashFormat,
  type Hasher,
  HASH_SIZES,
  hashBytes,
  createHasher,
  parseHash,
  parsePrefixedHash,
  parseHashAlgorithm,
  compressHash,
  BadHashError,
  UnknownHashAlgorithmError,
} from "./store/hash.js";
export {
  DEFAULT_STORE_DIR,
  STORE_PATH_HASH_LENGTH,
  MAX_STORE_PATH_NAME_LENGTH,
  type StorePath,
  InvalidStorePathError,
  parseStorePath,
  parseStorePathBaseName,
  isStorePath,
  printStorePath,
  storePathBaseName,
  validateStorePathName,
  makeStorePath,
  makeTextPath,
  makeFixedOutputPath,
  makeSourcePath,
  makeOutputPath,
  outputPathName,
  compareCodePoints,
} from "./store/store-path.js";
export {
  type Derivation,
  type DerivationOutput,
  type DerivationDraft,
  DerivationParseError,
  InvalidDerivationError,
  parseDerivation,
  printDerivation,
  hashDerivationModulo,
  finalizeDerivation,
  completeDerivation,
  type CompletedDerivation,
  checkDerivationOutputs,
  isFixedOutputDerivation,
  derivationStorePath,
  derivationReferences,
  derivationToJSON,
  derivationsToJSON,
} from "./store/derivation.js";

// --- store formats: NAR, narinfo, signatures ---
export {
  BadNarError,
  NarDumpError,
  type NarSink,
  type NarVisitor,
  NarParser,
  NarRestorer,
  dumpPath,
  dumpPathToBytes,
  narHashPath,
  narOfBytes,
  narOfSymlink,
  singleFileOfNar,
  parseNar,
  restoreNar,
  hashNarBytes,
  compareNames,
} from "./store/nar.js";
export {
  type NarInfo,
  NarInfoError,
  parseNarInfo,
  renderNarInfo,
  narInfoFieldsCodec,
  narInfoFingerprint,
  narInfoFileName,
  signNarInfo,
  countNarInfoSignatures,
  countNarInfoSignaturesAsync,
} from "./store/narinfo.js";
export {
  type SecretKey,
  type PublicKey,
  BadKeyError,
  parseSecretKey,
  parsePublicKey,
  parsePublicKeys,
  formatSecretKey,
  formatPublicKey,
  toPublicKey,
  generateKeyPair,
  signDetached,
  verifyDetached,
  verifyDetachedAsync,
  countValidSignatures,
  countValidSignaturesAsync,
  fingerprintPath,
} from "./store/signature.js";

// --- local store: the store on a Host, path-info database, reference scanning, store root ---
export {
  LocalStore,
  type LocalStoreOptions,
  type AddPathOptions,
  type NarImportInfo,
  type PathVerification,
  type StoreVerification,
  type StoreLog,
  type OutputRegistration,
  InvalidPathError,
  PathAliveError,
  HashMismatchError,
  UnsupportedFileError,
  StoreLockTimeoutError,
  MissingReferenceError,
  modifiedMessage,
} from "./store/local-store.js";
export { PathInfoDb, type ValidPathInfo, CorruptPathInfoError, GROUP_COMMIT_MS } from "./store/path-info.js";
export { ReferenceScanner, scanBytesForReferences, hashPartIndex, resolveHits } from "./store/references.js";
export { resolveStoreRoot, type StoreRootInputs, StoreRootError } from "./store/store-root.js";
export { exportPaths, importPaths, BadExportError } from "./store/export-import.js";

// --- eval: syntax (parser, --parse printer, Nix-style errors) ---
export type { Expr, ExprType, Pos, AttrName, AttrDef, DynamicAttrDef, Formal } from "./eval/ast.js";
export { parse, nixOrder, type ParseOptions } from "./eval/parser.js";
export { printExpr, showString, showId, showAttrPath } from "./eval/print-expr.js";
export { Lexer, type Token, type TokenKind } from "./eval/lexer.js";
export { NixError, ParseError, formatNixError, type TraceFrame, type NixErrorOptions, type FormatNixErrorOptions } from "./eval/errors.js";

// --- eval ---
export { evaluate, Evaluator, toPlain, type EvaluatorOptions, type EvaluateOptions, type SearchPathEntry, type PlainValue } from "./eval/api.js";
export { parseNixPath, defaultNixPath, isSearchPathUri, resolveSearchPathUri, findFile } from "./eval/search-path.js";
export { SEARCH_PATH_FETCH, type SearchPathFetchSettings } from "./eval/search-path.js";
export { FetcherCache, DEFAULT_TARBALL_TTL, defaultFetcherCacheDir, downloadFileCached, downloadTarballCached, type CachedFetchContext, type DownloadedFile } from "./eval/tarball-cache.js";
export {
  NixAttrs,
  AttrsShape,
  NixFloat,
  NixString,
  NixPath,
  NixLambda,
  PrimOp,
  PrimOpApp,
  Thunk,
  typeOf,
  showType,
  type Value,
  type LazyValue,
  type NixInt,
  type NixList,
  type PrimOpImpl,
} from "./eval/value.js";
export { printValue, valueToJSON, formatFloat } from "./eval/print-value.js";
export { valueToXMLDocument } from "./eval/print-xml.js";
export { EvalError } from "./eval/errors.js";
export {
  defineBuiltin,
  defineConstant,
  registeredBuiltins,
  lookupBuiltin,
  type BuiltinContext,
  type BuiltinEntry,
  type BuiltinOptions,
  type CoerceOptions,
  type EvalStateLike,
} from "./eval/builtins/index.js";

// --- eval: builtins library (versions, regex, JSON, TOML, XML) ---
export { compareVersions, splitVersion, parseDrvName } from "./eval/builtins/versions.js";
export { compileRegex, regexMatch, regexSplit, InvalidRegexError, type CompiledRegex, type SplitPiece } from "./eval/builtins/regex.js";
export { fromJSON, formatFloatG, jsonString, JsonParseError } from "./eval/builtins/json.js";
export { fromTOML, TomlParseError } from "./eval/builtins/toml.js";

// --- eval: string context, derivations, path builtins, fetchers (store access from the evaluator) ---
export {
  attachStore,
  evalStoreOf,
  EvalStore,
  ImportFromDerivationError,
  ImportFromDerivation,
  ImportFromDerivationBuildError,
  ImportFromDerivationDisabledError,
  RealisationNeeded,
  type AttachStoreOptions,
  type AsyncEvalRealiser,
  type EvalStoreBackend,
  type EvalRealiser,
  type PathFilter,
} from "./eval/builtins/store-bridge.js";
export { decodeContextElement, type ContextElement } from "./eval/builtins/context.js";
export { derivationStrict, instantiateDerivations, instantiateValue, derivationsOf, type InstantiatingEvaluator } from "./eval/builtins/derivation.js";
export { DownloadError, FetchHashMismatchError, type SyncFetcher } from "./eval/builtins/fetchers.js";

// --- build: realise (scheduler, sandbox, builder environment), binary caches, copy ---
export { realise, queryMissing, type MissingPaths, type RealiseOptions, type Realisation, type BuildEvent, type JsBuilder, type JsBuilderContext } from "./build/realise.js";
export { type BuildSettings, DEFAULT_BUILD_SETTINGS, buildSettingsFrom } from "./build/settings.js";
export {
  BuildError,
  BuilderFailedError,
  BuildTimeoutError,
  FixedOutputHashMismatchError,
  NotDeterministicError,
  WrongSystemError,
  MissingOutputError,
  ReferenceCheckError,
  BuildsFailedError,
  DependencyFailedError,
  CannotBuildError,
  SandboxError,
  SubstituteError,
} from "./build/errors.js";
export { builderEnvironment, passAsFileName, type BuilderEnvironment, type BuilderEnvironmentOptions, type BuildDirFile } from "./build/environment.js";
export { bubblewrapArgs, findBubblewrap, findSandboxShell, mergedOutputCommand, parseSandboxPath, SANDBOX_COPY_LIMIT, SANDBOX_ETC, stageSmallInputs, type SandboxSpec } from "./build/sandbox.js";
export { BUILTIN_BUILDERS, builtinFetchurl, builtinBuildenv, BuiltinBuilderError, type BuiltinBuilderContext } from "./build/builtins.js";
export {
  BinaryCache,
  NoSubstituteError,
  SubstitutionFailedError,
  substitutePaths,
  querySubstitutes,
  queryAvailable,
  addSubstitutes,
  copyToCache,
  copyFromCache,
  pathInfoTrusted,
  type CopyFromCacheOptions,
  sortCaches,
  contentAddressMatches,
  type FetchLike,
  type CacheInfo,
  type DownloadProgress,
  type SubstituteOptions,
  type SubstituteQuery,
  type CopyToCacheOptions,
} from "./build/binary-cache.js";
export { compress, decompress, compressionExtension, READABLE_COMPRESSIONS, WRITABLE_COMPRESSIONS } from "./build/compression.js";
export { buildLogPath, readBuildLog, BuildLogWriter } from "./build/build-log.js";
export { addPermRoot, autoRootPath } from "./build/roots.js";

// --- os: module system runner, system top level, activation, services, boot menus, generations ---
export { OsError, ActivationScriptError } from "./os/errors.js";
export { evaluateSystem, buildSystem, realiseToplevel, listOptions, evalConfigExpr, type ConfigurationInput, type OsBuildContext, type EvaluatedSystem, type OptionDoc } from "./os/eval-config.js";
export { osBuilder, OS_BUILDER } from "./os/builder.js";
export { parseSystemSpec, SystemSpecCodec, type SystemSpec, type UserSpec, type GroupSpec, type UnitSpec } from "./os/spec.js";
export { activate, dryActivation, currentSystem, pendingActivation, readActivationJournal, writeActivationJournal, clearActivationJournal, activationJournal, orderActivationScripts, shellScriptRunner, type ScriptRunner, type TargetRoot, type ActivateOptions, type PendingActivation } from "./os/activate.js";
export { setupEtc, listEtc, isEtcCopy, type EtcEntry, type EtcChanges, type SetupEtcOptions } from "./os/etc.js";
export { Owners } from "./os/owners.js";
export { replaceFile, replaceLink, dropTemp, tempFor, type FileOwner } from "./os/replace-file.js";
export { computeAccounts, writeAccounts, type AccountFiles } from "./os/users.js";
export { planUnits, describePlan, RecordingServiceManager, systemctlServiceManager, type ServiceManager, type UnitPlan, type UnitState } from "./os/services.js";
export { installBootLoader, grubConfig, bootGenerations, readSystemSpec, readSpecialisations, type BootGeneration, type BootSpecialisation, type BootMenu } from "./os/bootloader.js";
export {
  rebuild,
  switchSystem,
  switchToConfiguration,
  completeInterruptedSwitch,
  listSystemGenerations,
  formatSystemGenerations,
  deleteSystemGenerations,
  generationUnits,
  systemProfile,
  type OsContext,
  type RebuildAction,
  type RebuildOptions,
  type RebuildResult,
  type SwitchAction,
  type SwitchResult,
  type SystemGeneration,
} from "./os/system.js";
export { nixDirFor } from "./os/nix-files.js";

// --- os: build-vm (bubblewrap VM runner, port forwarding, disk image) and the service supervisor ---
export { UnitFileError, parseUnit, parseUnitSections, splitUnitWords, expandCommand, type Unit, type UnitCommand, type RestartPolicy } from "./os/supervisor/unit-file.js";
export { loadUnits, planStart, type UnitSet, type StartPlan } from "./os/supervisor/order.js";
export { Supervisor, SupervisorError, type SupervisorOptions, type SupervisorEvent, type UnitStatus, type UnitActiveState } from "./os/supervisor/supervisor.js";
export { VmError } from "./os/vm/errors.js";
export { runVm, storePhysicalPath, runAsArgv, type RunVmOptions, type RunningVm } from "./os/vm/runner.js";
export { vmBubblewrapArgs, DEFAULT_HOST_RUNTIME, VM_BASE_ENV, VM_INIT, type VmSandboxSpec } from "./os/vm/bubblewrap.js";
export { vmHost, nsenterArgs, firstChild, type VmNamespaces } from "./os/vm/vm-host.js";
export { listenForwards, RELAY_PROGRAM, type ForwardPort, type HostForwards } from "./os/vm/port-forward.js";
export { restoreStateImage, saveStateImage } from "./os/vm/state-image.js";
export { prepareRoot, linkEtc, ROOT_DIRS } from "./os/vm/boot.js";
export { buildVm, buildVmCommand, runVmCommand, vmActivation, addResultLink, parseForward, type BuildVmInput, type BuiltVm, type VmCommandContext, type RunVmCommandHooks } from "./os/vm/command.js";

// --- profiles: profiles and generations, user environments (builtin:buildenv), GC roots, garbage collection, settings and trust ---
/** Profiles, generations, user environments, GC roots, the garbage collector, settings and trust (`profiles.install`, `profiles.rollback`, `profiles.collectGarbage`, …). @public */
export * as profiles from "./profiles/index.js";
export { ProfileError, BuildEnvCollisionError, TrustError, PathLiveError } from "./profiles/errors.js";
