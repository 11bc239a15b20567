/**
 * The profiles library API (what `tsnix env` and `tsnix collect-garbage`
 * are built on), gathered for `import { profiles } from "tsnix"`.
 */
export {
  type ProfileContext,
  type InstallOptions,
  type UpgradeType,
  defaultProfile,
  userProfile,
  switchProfile,
  profileTarget,
  queryInstalled,
  install,
  uninstall,
  upgrade,
  setProfile,
  setFlag,
  selectorMatches,
  listGenerations,
  rollback,
  switchGeneration,
  deleteGenerations,
} from "./profile.js";
export {
  type Generation,
  type ProfileGenerations,
  type GenerationSelector,
  findGenerations,
  createGeneration,
  switchLink,
  replaceSymlink,
  lockProfile,
  parseGenerationSelector,
  parseDays,
  formatGenerations,
  generationPath,
} from "./generations.js";
export { type QueryItem, type QueryOptions, formatQuery, sortQueryItems, querySubstitutablePaths } from "./query.js";
export { type ManifestElement, type MetaValue, printManifest, parseManifest, printMetaValue, manifestReferences } from "./manifest.js";
export { type BuildEnvPackage, type BuildEnvOptions, buildEnv, buildenvBuiltin, parseBuildEnvDerivations } from "../build/buildenv.js";
export { type UserEnv, createUserEnv, readUserEnvManifest, buildEnvDerivationsAttr, elementOfStorePath } from "./user-env.js";
export { type AvailableElement, loadAvailable, getDerivations, elementOfDerivation, selectNewest } from "./available.js";
export { type Roots, gcRootsDir, profilesDir, initStateDirs, autoRootName, addIndirectRoot, addPermRoot, findPermRoots, findRuntimeRoots, findRoots } from "./roots.js";
export { TempRoots, readTempRoots, tempRootsDir, gcLockFile } from "./temp-roots.js";
export { type GcAction, type GcOptions, type GcResult, collectGarbage, computeLive, whyAlive, showBytes } from "./gc.js";
export {
  type Settings,
  type UserIdentity,
  unixGroupsOf,
  hostUserIdentity,
  parseConfig,
  makeSettings,
  loadSettings,
  isTrusted,
  isAllowed,
  checkAllowed,
  applyClientSettings,
  checkMayAddPath,
  checkMaySubstituteFrom,
  checkMaySetSandbox,
  checkOwnsPath,
  perUserOwner,
} from "./settings.js";
export { ProfileError, BuildEnvCollisionError, TrustError, PathLiveError } from "./errors.js";
