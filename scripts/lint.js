'use strict';

// npm run lint: the rules the Rust code is held to, checked rather than
// hoped for (CI runs this). rustfmt's layout, and clippy with every warning
// an error, over all targets (tests included) of the addon — as released and
// as the test build with its hooks — and of the sans-IO admission crate.
// `npm run format` applies rustfmt's layout.

const { spawnSync } = require('child_process');
const path = require('path');

const root = path.join(__dirname, '..');
const admission = ['--manifest-path', path.join('crates', 'admission', 'Cargo.toml')];
const clippy = (...args) => ['clippy', '--locked', '--all-targets', ...args, '--', '-D', 'warnings'];

const CHECKS = [
  ['fmt', '--check'],
  ['fmt', '--check', ...admission],
  clippy(),
  clippy('--features', 'test-hooks'),
  clippy(...admission, '--all-features'),
];

const format = process.argv.includes('--fix');
const checks = format ? [['fmt'], ['fmt', ...admission]] : CHECKS;
let failed = 0;
for (const check of checks) {
  console.log(`lint: cargo ${check.join(' ')}`);
  const r = spawnSync('cargo', check, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    failed++;
    console.error(`lint: cargo ${check.join(' ')} failed (${r.error?.message || r.signal || `exit code ${r.status}`})`);
  }
}
if (failed) {
  console.error(`lint: ${failed} of ${checks.length} checks failed${format ? '' : ' (npm run format fixes the layout)'}`);
  process.exit(1);
}
