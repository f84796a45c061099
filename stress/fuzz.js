'use strict';

// npm run stress -- fuzz [cases] [seed]: the differential fuzzer at scale
// (default 100,000 cases). Every case runs on node:net and on rust-net; any
// difference in what a program could observe is a divergence, printed with
// its seed so `FUZZ_SEED=<seed> FUZZ_CASES=1 node --test __test__/fuzz.test.js`
// replays it. Loopback only; stops by itself.

const fs = require('fs');
const os = require('os');
const path = require('path');
const { fuzz, setup } = require('../__test__/helpers/fuzz');

async function main(cases = 100_000, seed = 1) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rust-net-fuzz-'));
  process.chdir(dir);
  const { env, cleanupPaths, close } = await setup(dir);
  const started = Date.now();
  const divergences = await fuzz(seed, cases, env, cleanupPaths, (done, found) => {
    if (done % 10_000 === 0) console.log(`  ${done} cases, ${found} divergences`);
  });
  close();
  fs.rmSync(dir, { recursive: true, force: true });
  for (const d of divergences.slice(0, 5)) console.log(JSON.stringify(d, null, 1));
  const seconds = ((Date.now() - started) / 1000).toFixed(0);
  console.log(`fuzz: ${cases} cases from seed ${seed} in ${seconds} s: ${divergences.length} divergences, 0 crashes`);
  return divergences.length === 0;
}

module.exports = { main };

if (require.main === module) {
  main(Number(process.argv[2] ?? 100_000), Number(process.argv[3] ?? 1))
    .then((ok) => { process.exitCode = ok ? 0 : 1; });
}
