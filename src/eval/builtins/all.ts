/**
 * Loads every builtin module so its `defineBuiltin` calls run. The evaluator
 * imports this file; add one import line per builtins module (any order: a
 * later registration of the same name wins, so keep names unique).
 */
import "./core.js";
