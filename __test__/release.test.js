'use strict';

// The release steps that are @napi-rs/cli's own (scripts/build-all.js and
// docs/publishing.md): the checked-in npm/<platform>/ packages are exactly
// what `napi create-npm-dirs` writes, and `npm version` keeps their versions
// in step through the package's `version` script (`napi version`), in the
// same commit. Each runs the CLI in a temporary copy of the package
// metadata, never in this checkout. The cross builds and `napi artifacts`
// need the cross toolchain; CI runs them (npm run build:all, then
// packed.test.js).

const { test } = require('node:test');
const assert = require('assert');
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const root = path.join(__dirname, '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const napiCli = path.join(root, 'node_modules', '@napi-rs', 'cli', 'dist', 'cli.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rust-net-release-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

// The CLI's own engines field (^20.17.0 || ^22.13.0 || >= 23.5.0): on an
// older Node (test:matrix runs 18) it does not start, so these tests skip;
// the release steps run on the default Node.
const [major, minor] = process.versions.node.split('.').map(Number);
const cliRuns = major > 23 || (major === 23 && minor >= 5) || (major === 22 && minor >= 13) ||
  (major === 20 && minor >= 17);
const skip = !cliRuns ? `@napi-rs/cli does not run on Node ${process.version}` : false;

// The environment without the npm_* settings of an enclosing `npm test`.
function cleanEnv(extra = {}) {
  const env = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('npm_')) env[key] = value;
  return { ...env, ...extra };
}

function check(r, what) {
  assert.strictEqual(r.status, 0, `${what} failed (${r.signal || r.status}):\n${r.stdout}\n${r.stderr}`);
  return r;
}

// The files of npm/ under `dir`, as { 'linux-x64-gnu/package.json': text }.
function npmFiles(dir) {
  const files = {};
  for (const platform of fs.readdirSync(path.join(dir, 'npm')).sort()) {
    for (const file of fs.readdirSync(path.join(dir, 'npm', platform)).sort()) {
      if (!file.endsWith('.node')) files[`${platform}/${file}`] = fs.readFileSync(path.join(dir, 'npm', platform, file), 'utf8');
    }
  }
  return files;
}

test('npm/<platform>/ is exactly what napi create-npm-dirs writes from package.json', { skip, timeout: 60000 }, () => {
  const dir = path.join(tmp, 'create');
  fs.mkdirSync(dir);
  fs.copyFileSync(path.join(root, 'package.json'), path.join(dir, 'package.json'));
  check(spawnSync(process.execPath, [napiCli, 'create-npm-dirs'], { cwd: dir, env: cleanEnv(), encoding: 'utf8', timeout: 50000 }),
        'napi create-npm-dirs');
  const generated = npmFiles(dir);
  // One package.json and README.md per napi.targets entry, nothing else.
  assert.strictEqual(Object.keys(generated).length, 2 * pkg.napi.targets.length, Object.keys(generated).join());
  assert.deepStrictEqual(npmFiles(root), generated);
});

test('npm version moves every npm/<platform>/ package to the new version, in the same commit', { skip, timeout: 90000 }, () => {
  const dir = path.join(tmp, 'version');
  fs.mkdirSync(dir);
  fs.copyFileSync(path.join(root, 'package.json'), path.join(dir, 'package.json'));
  fs.cpSync(path.join(root, 'npm'), path.join(dir, 'npm'), { recursive: true, filter: (f) => !f.endsWith('.node') });
  // The version script finds the napi CLI in node_modules/.bin, as in a checkout.
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'));
  fs.writeFileSync(path.join(dir, '.gitignore'), '/node_modules\n');
  const who = { GIT_AUTHOR_NAME: 'test', GIT_AUTHOR_EMAIL: 'test@example.invalid',
                GIT_COMMITTER_NAME: 'test', GIT_COMMITTER_EMAIL: 'test@example.invalid' };
  const env = cleanEnv({ ...who, GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1' });
  const git = (...args) => check(spawnSync('git', args, { cwd: dir, env, encoding: 'utf8', timeout: 20000 }),
                                 `git ${args.join(' ')}`).stdout;
  git('init', '-q');
  git('add', '-A');
  git('commit', '-q', '-m', 'the package as it is');

  const next = '9.8.7';
  assert.notStrictEqual(pkg.version, next);
  check(spawnSync('npm', ['version', next, '--no-audit', '--no-fund'], { cwd: dir, env, encoding: 'utf8', timeout: 60000 }),
        `npm version ${next}`);
  const platforms = fs.readdirSync(path.join(dir, 'npm')).sort();
  assert.strictEqual(platforms.length, pkg.napi.targets.length);
  for (const platform of platforms) {
    const sub = JSON.parse(fs.readFileSync(path.join(dir, 'npm', platform, 'package.json'), 'utf8'));
    assert.strictEqual(sub.version, next, platform);
  }
  // npm's version commit carries them with package.json, and leaves nothing behind.
  const committed = git('show', '--name-only', '--format=%s', 'HEAD').trim().split('\n');
  assert.deepStrictEqual(committed, [next, '', ...platforms.map((p) => `npm/${p}/package.json`), 'package.json']);
  assert.strictEqual(git('status', '--porcelain'), '');
});
