/**
 * The store's per-path lock files, as the local store names them
 * (`STATE/tsnix-db/locks/<hashPart>.lock`). The collector deletes a path
 * while holding this lock, and temporary roots pass through it, so both
 * agree with the store's own adds and deletes.
 */
import type { LocalStore } from "../store/local-store.js";

/** The lock file of store path `path`. @public */
export function storeLockFile(store: LocalStore, path: string): string {
  const { hashPart } = store.parseStorePath(path);
  return `${store.db.dbDir}/locks/${hashPart}.lock`;
}
