'use strict';

// index.d.ts and register.d.ts: a strict TypeScript project that uses
// rust-net wherever it used net.Server (__test__/fixtures/typescript) must
// compile (`tsc --noEmit --strict`). The fixture imports 'rust-net' by name,
// which resolves to this package through its own `exports` (self-reference),
// as it would from node_modules. __test__/package.test.js checks the same
// files against the packed and installed package.

const { test } = require('node:test');
const assert = require('assert');
const { spawnSync } = require('child_process');
const path = require('path');

const root = path.join(__dirname, '..');
const project = path.join(__dirname, 'fixtures', 'typescript');
const tsc = require.resolve('typescript/bin/tsc', { paths: [root] });

function compile(...flags) {
  const r = spawnSync(process.execPath, [tsc, '-p', project, '--noEmit', '--strict', ...flags],
                      { cwd: root, encoding: 'utf8', timeout: 120000 });
  assert.strictEqual(r.status, 0, `tsc ${flags.join(' ')} failed (${r.signal || r.status}):\n${r.stdout}\n${r.stderr}`);
}

const options = { timeout: 180000 };

test('the fixture type-checks with module/moduleResolution nodenext (ESM and CJS files)', options, () => {
  compile();
});

test('the fixture type-checks with moduleResolution bundler', options, () => {
  compile('--module', 'preserve', '--moduleResolution', 'bundler');
});

test('a wrong use of rust-net is a type error, as it is for net.createServer()', options, () => {
  // Negative control, so a fixture that type-checks everything (say, because
  // 'rust-net' resolved to `any`) cannot pass: the fixture's own
  // @ts-expect-error lines already require errors; here check one directly.
  const r = spawnSync(process.execPath, [
    tsc, '--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext',
    '--types', 'node', path.join(project, 'wrong.mts'),
  ], { cwd: root, encoding: 'utf8', timeout: 120000 });
  assert.notStrictEqual(r.status, 0, 'tsc accepted a wrong use');
  assert.match(r.stdout, /wrong\.mts\(5,\d+\): error TS\d+: .*'notAnOption' does not exist in type 'ServerOpts'/);
});
