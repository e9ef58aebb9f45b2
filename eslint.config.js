// Small functions and no floating promises: the limits follow the Pepr habits in STYLE.md.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  // crd-types.ts is generated from crds/ by extauthz/policy/gen-types.ts: checked for freshness, not linted.
  { ignores: ['dist/**', 'node_modules/**', 'test/tools/**', 'charts/**', 'extauthz/policy/crd-types.ts'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      complexity: ['error', 12],
      'max-depth': ['error', 3],
      'max-params': ['error', 4],
      'max-lines-per-function': ['warn', { max: 80, skipBlankLines: true, skipComments: true }],
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/explicit-function-return-type': ['error', { allowExpressions: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'Read configuration in extauthz/config.ts or operator/config.ts only.' }],
    },
  },
  {
    // The two config modules are the designated places that read the environment.
    files: ['extauthz/config.ts', 'operator/config.ts'],
    rules: { 'no-restricted-properties': 'off' },
  },
  {
    files: ['**/*.test.ts', 'test/**/*.ts'],
    rules: {
      'max-lines-per-function': 'off',
      '@typescript-eslint/explicit-function-return-type': 'off',
      'no-restricted-properties': 'off',
      // node:test's test()/describe() return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': ['error', { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite'] }] }],
    },
  },
);
