/**
 * Builtins the language core needs (arithmetic, comparison, type predicates,
 * throw/abort, import, …). Taken here by the evaluator engineer — other
 * builtin modules should not redefine them:
 * (list filled in as they are implemented; see the defineBuiltin calls below)
 */
export {};
