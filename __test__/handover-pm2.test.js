'use strict';

// Hand-over under a real pm2 (docs/handover.md, "Running it"): the example
// app (examples/handover/) deployed by examples/handover/pm2-deploy.sh,
// which starts the stopped one of ecosystem.config.js's two fork-mode
// entries. Skipped when pm2 is not installed (npm install -g pm2). pm2 runs
// with its own PM2_HOME in a temporary directory, on this test's Node, and
// its daemon is killed at the end.

const { after, test } = require('node:test');
const assert = require('assert');
const { execFile, execFileSync } = require('child_process');
const fs = require('fs');
const http = require('http');
const net = require('net');
const path = require('path');
const { freePort, tempDir } = require('./helpers/handover');

const root = path.join(__dirname, '..');
const deploy = path.join(root, 'examples', 'handover', 'pm2-deploy.sh');

// pm2's CLI script (its bin/pm2), found on PATH, or null.
function findPm2() {
  try {
    const found = execFileSync('/bin/sh', ['-c', 'command -v pm2'], { encoding: 'utf8' }).trim();
    return found ? fs.realpathSync(found) : null;
  } catch {
    return null;
  }
}

const pm2Script = findPm2();
const home = tempDir();
// A `pm2` first on PATH that runs pm2 on this Node, so that pm2's daemon and
// the apps it forks run on the Node under test.
const bin = path.join(home, 'bin');
fs.mkdirSync(bin);
fs.writeFileSync(path.join(bin, 'pm2'), `#!/bin/sh\nexec "${process.execPath}" "${pm2Script}" "$@"\n`, { mode: 0o755 });

let env = null;

function run(command, args) {
  return new Promise((resolve, reject) => {
    execFile(command, args, { env, cwd: root, timeout: 30000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${command} ${args.join(' ')}: ${err.message}\n${stdout}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

// pm2's view of the apps: { name: { pid, status, restarts, exitCode } }.
async function apps() {
  const out = await run(path.join(bin, 'pm2'), ['jlist']);
  const list = JSON.parse(out.slice(out.indexOf('[')));
  return Object.fromEntries(list.map((p) => [p.name, {
    pid: p.pid,
    status: p.pm2_env.status,
    restarts: p.pm2_env.restart_time,
    unstable: p.pm2_env.unstable_restarts,
    exitCode: p.pm2_env.exit_code,
  }]));
}

// Polls pm2 until `pred(apps)` holds (at most `ms`).
async function until(pred, what, ms = 20000) {
  const deadline = Date.now() + ms;
  let seen;
  for (;;) {
    seen = await apps();
    if (pred(seen)) return seen;
    if (Date.now() > deadline) throw new Error(`${what} not within ${ms} ms; pm2 says ${JSON.stringify(seen)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

// One short http GET (a connection of its own): the pid that answered.
function hello(port) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => { body += chunk; });
      res.on('end', () => {
        const m = /^hello from process (\d+)\n$/.exec(body);
        if (m) resolve(Number(m[1])); else reject(new Error(`answer ${res.statusCode}: ${JSON.stringify(body)}`));
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('no answer within 5 s')));
  });
}

after(async () => {
  if (env) await run(path.join(bin, 'pm2'), ['kill']).catch(() => {});
});

test('pm2 deploys (fork mode, blue/green entries) under load refuse or fail no request; each old process exits with 0 and pm2 leaves it stopped', async (t) => {
  if (!pm2Script) return t.skip('pm2 is not installed (npm install -g pm2)');
  const port = await freePort();
  env = {
    ...process.env,
    PATH: `${bin}:${process.env.PATH}`,
    PM2_HOME: path.join(home, 'pm2'),
    PORT: String(port),
    RUST_NET_HANDOVER: path.join(home, 'ctl'),
  };
  await run('/bin/sh', [deploy]);
  let state = await until((a) => a['app-blue']?.status === 'online', 'app-blue online');
  assert.strictEqual(state['app-green'], undefined, 'the first deploy starts app-blue only');
  let serving = state['app-blue'].pid;
  // The app listens a moment after pm2 calls it online.
  for (let i = 0; ; i++) {
    try {
      assert.strictEqual(await hello(port), serving);
      break;
    } catch (err) {
      if (i === 50) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  // Four clients, each connection a request of its own, all along.
  let stopped = false;
  const answered = new Map();
  const errors = [];
  const loops = Array.from({ length: 4 }, async () => {
    while (!stopped) {
      try {
        const pid = await hello(port);
        answered.set(pid, (answered.get(pid) ?? 0) + 1);
      } catch (err) {
        errors.push(err.code ?? err.message);
        // A server that is gone must not turn the loop into a spin.
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
  });

  const deployed = [serving];
  // The clients stop however the deploys end, so a failure cannot leave
  // them looping and this file never exiting.
  try {
    for (const [next, old] of [['app-green', 'app-blue'], ['app-blue', 'app-green'], ['app-green', 'app-blue']]) {
      const oldPid = serving;
      await run('/bin/sh', [deploy]);
      state = await until((a) => a[next]?.status === 'online' && a[old].status === 'stopped',
        `${next} online and ${old} stopped`);
      serving = state[next].pid;
      deployed.push(serving);
      assert.notStrictEqual(serving, oldPid);
      // The old process exited by itself with 0 and pm2 did not start it again.
      assert.strictEqual(state[old].exitCode, 0);
      assert.strictEqual(state[old].pid, 0);
      assert.throws(() => process.kill(oldPid, 0), { code: 'ESRCH' });
      // Load reaches the new process before the next deploy.
      const seen = answered.get(serving) ?? 0;
      const deadline = Date.now() + 5000;
      while ((answered.get(serving) ?? 0) <= seen + 20 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  } finally {
    stopped = true;
    await Promise.all(loops);
  }

  assert.deepStrictEqual(errors, []);
  for (const pid of deployed) assert.ok(answered.get(pid) > 0, `process ${pid} answered: ${JSON.stringify([...answered])}`);
  assert.deepStrictEqual([...answered.keys()].sort(), [...deployed].sort(), 'only the deployed processes answered');
  // pm2 ls: one entry online, one stopped, no restart counted.
  assert.deepStrictEqual(Object.keys(state).sort(), ['app-blue', 'app-green']);
  for (const app of Object.values(state)) {
    assert.strictEqual(app.restarts, 0);
    assert.strictEqual(app.unstable, 0);
  }
  await run(path.join(bin, 'pm2'), ['ls']);
});

test('pm2-deploy.sh refuses to deploy while the last deploy\'s old process still finishes a request, instead of restarting the entry that serves', async (t) => {
  if (!pm2Script) return t.skip('pm2 is not installed (npm install -g pm2)');
  assert.ok(env, 'runs after the deploys above');
  const port = Number(env.PORT);
  const before = await apps();
  const [old, next] = before['app-blue'].status === 'online' ? ['app-blue', 'app-green'] : ['app-green', 'app-blue'];
  // A request whose headers never end keeps the serving process busy.
  const held = net.connect(port, '127.0.0.1');
  await new Promise((resolve, reject) => held.on('connect', resolve).on('error', reject));
  held.write('GET / HTTP/1.1\r\nHost: localhost\r\n');
  await run('/bin/sh', [deploy]);
  const both = await until((a) => a[next].status === 'online', `${next} online`);
  assert.strictEqual(both[old].status, 'online', `${old} drains the held request`);
  await assert.rejects(run('/bin/sh', [deploy]), /both run: the last deploy's old process is still finishing its connections/);
  const after = await apps();
  assert.deepStrictEqual([after[old].pid, after[next].pid], [both[old].pid, both[next].pid], 'nothing was restarted');
  assert.strictEqual(await hello(port), both[next].pid);
  held.destroy();
  const done = await until((a) => a[old].status === 'stopped', `${old} stopped`);
  assert.strictEqual(done[old].exitCode, 0);
  assert.strictEqual(done[old].restarts, 0);
});
