'use strict';

// A bounded slice of the differential fuzzer (stress/fuzz.js runs 100,000
// cases): random createServer()/listen()/close()/... sequences must behave
// identically on node:net and rust-net. FUZZ_SEED and FUZZ_CASES override.

const assert = require('assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { test } = require('./helpers/oracle');
const { fuzz, setup } = require('./helpers/fuzz');

test('random call sequences: no divergence from node:net', { timeout: 180_000 }, async (t) => {
  const seed = Number(process.env.FUZZ_SEED ?? 20261125);
  const cases = Number(process.env.FUZZ_CASES ?? 1500);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rust-net-fuzz-'));
  const cwd = process.cwd();
  process.chdir(dir);
  const { env, cleanupPaths, close } = await setup(dir);
  try {
    const divergences = await fuzz(seed, cases, env, cleanupPaths);
    t.diagnostic(`${cases} cases from seed ${seed}: ${divergences.length} divergences`);
    assert.deepStrictEqual(divergences.slice(0, 3), []);
  } finally {
    close();
    process.chdir(cwd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
