// @ts-check
// Lint rules for asyncfn: @eslint/js recommended + typescript-eslint's type-checked recommended set.
// `npm run lint` (and `npm test`) runs `eslint .`; the type-aware pass costs ~35 s on 2 cores.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'coverage/**', '.tap/**', 'node_modules/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // Sanitisers strip control characters from headers, logs and paths on purpose.
      'no-control-regex': 'off',
      // `async` without `await` is deliberate: port implementations and fastify plugins turn a throw into a rejection.
      '@typescript-eslint/require-await': 'off',
      // A leading underscore marks a binding kept on purpose (type-level checks, positional parameters).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
      // A binding a teardown reads before it is assigned stays `let` (a `const` would be in its temporal dead zone).
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      // Caught values and abort reasons are passed on unchanged (typed `unknown`), not rewrapped.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true, allowThrowingAny: true }],
    },
  },
  {
    // RxJS's index loads all 223 of its modules; the program takes the pieces it uses from actors/rx.ts.
    files: ['src/**/*.ts', 'actors/**/*.ts'],
    ignores: ['actors/rx.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: [{ name: 'rxjs', message: "Import from actors/rx.ts (RxJS's index loads every operator)." }] }],
    },
  },
  {
    files: ['test/**'],
    rules: {
      // tap awaits every t.test() itself; top-level subtests are not awaited by design.
      '@typescript-eslint/no-floating-promises': 'off',
      // Test servers use async request listeners: a throw there is an unhandled rejection, which fails the test.
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
    },
  },
  {
    // The web console's front end (src/gateway/console/web/tsconfig.json: lib DOM, Preact JSX) runs in a browser.
    files: ['src/gateway/console/web/**/*.{ts,tsx}'],
    languageOptions: {
      globals: {
        window: 'readonly',
        document: 'readonly',
        location: 'readonly',
        history: 'readonly',
        fetch: 'readonly',
        URLSearchParams: 'readonly',
        addEventListener: 'readonly',
        removeEventListener: 'readonly',
        dispatchEvent: 'readonly',
        PopStateEvent: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
      },
    },
  },
  {
    // Plain ESM scripts outside tsconfig (node loader hooks, the BullMQ bench worker).
    files: ['**/*.{js,mjs}'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly' },
    },
  },
);
