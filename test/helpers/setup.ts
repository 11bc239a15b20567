/**
 * Runs before every test file (vitest.config.ts `setupFiles`). Fetches through
 * the fetcher cache write to $XDG_CACHE_HOME/tsnix, else ~/.cache/tsnix, as
 * Nix's do: give each test file a cache directory of its own, so that test runs
 * neither fill the user's cache nor see each other's entries.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";

const cacheHome = mkdtempSync(join(tmpdir(), "tsnix-test-cache-"));
process.env["XDG_CACHE_HOME"] = cacheHome;
afterAll(() => rmSync(cacheHome, { recursive: true, force: true }));
