// Lint rules for ferry. Workflow code gets extra rules: it is bundled and
// replayed by Temporal, so Node built-ins, clocks and randomness are banned there.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', '.stack/', 'dist/'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // CommonJS preload scripts handed to `node --require`.
    files: ['**/*.cjs'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['node:*', 'fs', 'path', 'os', 'child_process', 'net', 'http', 'https', 'crypto'], message: 'workflow code is replayed: do I/O in activities' },
            { group: ['@aws-sdk/*', 'mysql2', 'mysql2/*', '@duckdb/*'], message: 'workflow code is replayed: do I/O in activities' },
          ],
        },
      ],
      'no-restricted-syntax': [
        'error',
        { selector: "CallExpression[callee.object.name='Date'][callee.property.name='now']", message: 'use Temporal time (workflowInfo / sleep), not Date.now()' },
        { selector: "CallExpression[callee.object.name='Math'][callee.property.name='random']", message: 'use uuid4() from @temporalio/workflow, not Math.random()' },
      ],
      '@typescript-eslint/consistent-type-imports': ['error', { prefer: 'type-imports' }],
    },
  },
);
