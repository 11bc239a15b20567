/**
 * Loads every builtin module so its `defineBuiltin` calls run. The evaluator
 * imports this file; add one import line per builtins module (any order: a
 * later registration of the same name wins, so keep names unique).
 */
import "./core.js";
import "./lists.js";
import "./attrs.js";
import "./strings.js";
import "./versions.js";
import "./json.js";
import "./xml.js";
import "./toml.js";
import "./control.js";
import "./math.js";
import "./context.js";
import "./derivation.js";
import "./paths.js";
import "./fetchers.js";
