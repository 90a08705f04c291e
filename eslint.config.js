// ESLint 9 flat config: typescript-eslint with type information for the TypeScript (src/, test/,
// bench/, packages/client/src/), the plain recommended rules for the few JavaScript entry files,
// and eslint-config-prettier last so no rule argues with the formatter (Prettier owns layout, ESLint
// owns correctness). The rules chosen are the habits of docs/development.md ("Code style tooling")
// that a machine can check: no `any`, no promise left floating, `import type` for types, strict
// equality, no unused bindings, every union case handled in a switch.
import js from "@eslint/js";
import prettier from "eslint-config-prettier";
import tseslint from "typescript-eslint";

export default tseslint.config(
  {
    ignores: [
      "dist/",
      "packages/client/dist/",
      "node_modules/",
      "coverage/",
      "bench/results/",
      "bench/.data/",
      "data/",
      ".smoke/",
    ],
  },
  // A disable comment that no longer disables anything is an error, so none outlives its reason.
  { linterOptions: { reportUnusedDisableDirectives: "error" } },
  js.configs.recommended,
  {
    files: ["**/*.ts"],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      // The project service finds the tsconfig.json that owns each file (the root one, or
      // packages/client's), so ESLint sees the same program tsc checks.
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/await-thenable": "error",
      "@typescript-eslint/no-import-type-side-effects": "error",
      "@typescript-eslint/no-non-null-assertion": "error",
      "@typescript-eslint/switch-exhaustiveness-check": [
        "error",
        { considerDefaultExhaustiveForUnions: true, requireDefaultForNonUnion: false },
      ],
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" },
      ],
      eqeqeq: ["error", "always"],
      // Rethrowing or forwarding a caught error (typed `unknown`) is how failures travel here; throwing
      // a string or a plain object is still an error.
      "@typescript-eslint/only-throw-error": ["error", { allowThrowingUnknown: true }],
      "@typescript-eslint/prefer-promise-reject-errors": ["error", { allowThrowingUnknown: true }],
      // `type M = typeof import("…")` types a module that is loaded with a dynamic import().
      "@typescript-eslint/consistent-type-imports": [
        "error",
        { prefer: "type-imports", fixStyle: "inline-type-imports", disallowTypeAnnotations: false },
      ],
      // Off: these fire on intended patterns only.
      // - The ledger port keeps tigerbeetle-node's types, where `code`, `flags` and result statuses
      //   are plain numbers compared with its enums (TransferFlags.linked, CreateTransferError.exists).
      "@typescript-eslint/no-unsafe-enum-comparison": "off",
      // - An async function without await (a Verb's body, a fake ledger's method) is async so that a
      //   throw becomes a rejection, which is what the Promise-returning interface promises.
      "@typescript-eslint/require-await": "off",
      // - String(x) on a decoded JSON value typed `unknown` is the intended conversion; the rule
      //   cannot tell such a value from an object without a toString.
      "@typescript-eslint/no-base-to-string": "off",
    },
  },
  {
    files: ["test/**/*.ts"],
    rules: {
      // vitest's asymmetric matchers (expect.stringMatching, expect.any) are typed `any`.
      "@typescript-eslint/no-unsafe-assignment": "off",
      // A test's `lines[i]!` on what the previous line found fails the test loudly either way.
      "@typescript-eslint/no-non-null-assertion": "off",
    },
  },
  {
    files: ["**/*.js", "**/*.mjs"],
    languageOptions: {
      sourceType: "module",
      globals: {
        process: "readonly",
        console: "readonly",
        URL: "readonly",
        setTimeout: "readonly",
        clearTimeout: "readonly",
        Buffer: "readonly",
      },
    },
    rules: {
      eqeqeq: ["error", "always"],
      "no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" },
      ],
    },
  },
  prettier,
);
