// @ts-check
// `npm run lint` runs this after `tsc --noEmit -p tsconfig.check.json`: typescript-eslint's
// type-checked recommendations over the package and its tests, ESLint's own over the plain JS.
import eslint from '@eslint/js';
import { defineConfig } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  { ignores: ['dist/', 'dist-test/'] },
  { linterOptions: { reportUnusedDisableDirectives: 'error' } },
  eslint.configs.recommended,
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      // One program for src/ and test/ (tsconfig.json holds src/ only), the tests' import of the package resolved to src/.
      parserOptions: { project: './tsconfig.check.json', tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // kafkajs is a peer dependency loaded only when the caller passes no kafkaFactory (a service on
      // Confluent's client need not install it): a top-level import would make it required.
      '@typescript-eslint/no-require-imports': ['error', { allow: ['^kafkajs$'] }],
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // node:test's test() returns a promise the runner itself awaits; top-level calls are not awaited.
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'describe', 'it'] }] },
      ],
      // Fakes and handlers implement async interfaces (eachBatch, heartbeat, limit) with synchronous bodies:
      // `async` is how they return the promise the interface asks for, not a forgotten await.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    files: ['**/*.js'],
    languageOptions: { sourceType: 'commonjs', globals: globals.node },
  },
  {
    files: ['**/*.mjs'],
    languageOptions: { globals: globals.node },
  },
);
