/**
 * The abstract syntax of the Nix language, as the parser produces it and the
 * evaluator compiles it. It mirrors Nix's own expression classes (nixexpr.hh)
 * after Nix's parse-time desugaring, because `nix-instantiate --parse` prints
 * that desugared form and tsnix must print the same:
 *
 * - `<p>`        → Call(Var "__findFile", [Var "__nixPath", String "p"])
 * - `-e`         → Call(Var "__sub", [Int 0, e])
 * - `a - b`, `a * b`, `a / b` → Call(Var "__sub" | "__mul" | "__div", [a, b])
 * - `a < b`      → Call(Var "__lessThan", [a, b]); `a > b` → __lessThan b a;
 *   `a <= b`     → Not(__lessThan b a); `a >= b` → Not(__lessThan a b)
 * - `a + b`      → ConcatStrings(forceString=false, [a, b])
 * - `"x${e}y"`   → ConcatStrings(forceString=true, [String "x", e, String "y"]);
 *   a string with no interpolation is a plain String
 * - `./a/${b}`   → ConcatStrings(forceString=false, [Path "/abs/a/", b])
 * - URIs         → String
 * - `a.b.c = 1;` inside a set → nested non-recursive Attrs
 * - `let { body = e; … }` → Select(Attrs(rec), ["body"]) whose pos has line 0 (Nix's noPos)
 * - `__curPos`   → Pos
 *
 * Every node has the position of its first token (Nix's CUR_POS rules for
 * which token that is are the parser's business).
 */

/** A position in a source: 1-based line and column. `file` is the absolute path, or "«string»"/"«stdin»". @public */
export interface Pos {
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

/** One element of an attribute path: a static name or an interpolated expression. @public */
export type AttrName = { readonly name: string; readonly expr?: undefined } | { readonly name?: undefined; readonly expr: Expr };

/** A static attribute definition in a set or let. @public */
export interface AttrDef {
  readonly name: string;
  /** For `inherit x;` a Var x (resolved in the *enclosing* scope); for `inherit (e) x;` a Select(e, [x]). */
  readonly value: Expr;
  /**
   * True only for `inherit x;`. Nix 2.8 records `inherit (e) x;` as an ordinary definition `x = e.x;`,
   * so in `rec { … }` and `let` the expression `e` sees the new bindings.
   */
  readonly inherited: boolean;
  readonly pos: Pos;
}

/** A dynamic attribute `${e} = v;` or `"${e}" = v;`. @public */
export interface DynamicAttrDef {
  readonly name: Expr;
  readonly value: Expr;
  readonly pos: Pos;
}

/** A formal parameter `{ name ? default }`. @public */
export interface Formal {
  readonly name: string;
  readonly default: Expr | undefined;
  readonly pos: Pos;
}

/** @public */
export type Expr =
  | { readonly type: "Int"; readonly pos: Pos; readonly value: bigint }
  | { readonly type: "Float"; readonly pos: Pos; readonly value: number }
  | { readonly type: "String"; readonly pos: Pos; readonly value: string }
  /** An absolute, normalised path (relative and `~/` paths are resolved by the parser). */
  | { readonly type: "Path"; readonly pos: Pos; readonly value: string }
  | { readonly type: "Var"; readonly pos: Pos; readonly name: string }
  | { readonly type: "Select"; readonly pos: Pos; readonly expr: Expr; readonly path: readonly AttrName[]; readonly default: Expr | undefined }
  | { readonly type: "HasAttr"; readonly pos: Pos; readonly expr: Expr; readonly path: readonly AttrName[] }
  | {
      readonly type: "Attrs";
      readonly pos: Pos;
      readonly rec: boolean;
      /** Static attributes in source order; names are unique (duplicates are a parse error). */
      readonly attrs: readonly AttrDef[];
      readonly dynamic: readonly DynamicAttrDef[];
    }
  | { readonly type: "List"; readonly pos: Pos; readonly elems: readonly Expr[] }
  | {
      readonly type: "Lambda";
      readonly pos: Pos;
      /** The simple argument name (`x: …`) or the `@` name; undefined if none. */
      readonly arg: string | undefined;
      /** Present for a `{ … }` pattern; formals in source order. */
      readonly formals: { readonly formals: readonly Formal[]; readonly ellipsis: boolean } | undefined;
      readonly body: Expr;
      /** Set by the parser when the lambda is bound to an attribute name (for traces: "while calling 'f'"). */
      name?: string;
    }
  | { readonly type: "Call"; readonly pos: Pos; readonly fn: Expr; readonly args: readonly Expr[] }
  | { readonly type: "Let"; readonly pos: Pos; readonly attrs: readonly AttrDef[]; readonly body: Expr }
  | { readonly type: "With"; readonly pos: Pos; readonly attrs: Expr; readonly body: Expr }
  | { readonly type: "If"; readonly pos: Pos; readonly cond: Expr; readonly then: Expr; readonly else: Expr }
  | { readonly type: "Assert"; readonly pos: Pos; readonly cond: Expr; readonly body: Expr }
  | { readonly type: "Not"; readonly pos: Pos; readonly expr: Expr }
  | {
      readonly type: "BinOp";
      readonly pos: Pos;
      readonly op: "==" | "!=" | "&&" | "||" | "->" | "//" | "++";
      readonly left: Expr;
      readonly right: Expr;
    }
  | {
      readonly type: "ConcatStrings";
      readonly pos: Pos;
      readonly forceString: boolean;
      readonly parts: readonly Expr[];
      /**
       * The position Nix reports for each part's coercion errors when it differs from the part's own:
       * the `${` of an interpolation, the `(` of a parenthesised `+` operand. Added by the parser.
       */
      readonly partPos?: readonly Pos[];
    }
  | { readonly type: "CurPos"; readonly pos: Pos };

/** The node type names. @public */
export type ExprType = Expr["type"];
