'use strict';

// Processes and clients for the hand-over tests: each process of a
// hand-over is a child running a fixture that reports JSON lines, and each
// connection asks "which process answered?".

const { spawn } = require('child_process');
const fs = require('fs');
const http = require('http');
const net = require('net');
const os = require('os');
const path = require('path');

const fixtures = path.join(__dirname, '..', 'fixtures');

// A directory for control sockets, removed at exit; `mode` 0o777 lets a
// process of another user create its socket there.
function tempDir(mode = 0o700) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rust-net-handover-'));
  fs.chmodSync(dir, mode);
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// The processes started and not yet exited.
const running = new Set();

// Kills every process still running (a test that failed half-way), so that
// the test file's own process can exit: for after().
function killAll() {
  for (const proc of running) proc.kill('SIGKILL');
}

// Starts `fixture` with `args`; `user` runs it as another user (runuser),
// `limit` with that many descriptors at most.
function start(fixture, args, { env = {}, user = null, limit = null } = {}) {
  const script = path.join(fixtures, fixture);
  let command = process.execPath;
  let argv = [script, ...args];
  if (limit !== null) {
    argv = ['-c', `ulimit -n ${limit} && exec "$0" "$@"`, process.execPath, script, ...args];
    command = '/bin/sh';
  }
  if (user !== null) {
    argv = ['-u', user, '--', command, ...argv];
    command = 'runuser';
  }
  // Its own process group, so that a signal reaches the node process also
  // through runuser and sh, and killAll() leaves nothing behind.
  const child = spawn(command, argv, {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
  });
  const proc = { child, events: [], stderr: '', waiters: [], exited: null };
  running.add(proc);
  let buffered = '';
  child.stdout.on('data', (chunk) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop();
    for (const line of lines) {
      let event;
      try {
        event = JSON.parse(line);
      } catch {
        continue;
      }
      proc.events.push(event);
      proc.waiters = proc.waiters.filter((w) => !w(event));
    }
  });
  child.stderr.on('data', (chunk) => { proc.stderr += chunk; });
  child.on('exit', (code, signal) => {
    running.delete(proc);
    proc.exited = { code, signal };
    for (const w of proc.waiters) w(null);
    proc.waiters = [];
  });
  // Resolves with the first event (seen or to come) for which `pred` holds.
  proc.waitFor = (pred, what = 'event', timeoutMs = 10000) => new Promise((resolve, reject) => {
    const seen = proc.events.find(pred);
    if (seen) return resolve(seen);
    const timer = setTimeout(() => reject(new Error(
      `no ${what} from ${fixture} within ${timeoutMs} ms; saw ${JSON.stringify(proc.events)}; stderr: ${proc.stderr}`)),
    timeoutMs);
    proc.waiters.push((event) => {
      if (event === null) {
        clearTimeout(timer);
        reject(new Error(`${fixture} exited (${JSON.stringify(proc.exited)}) before ${what}; saw ${
          JSON.stringify(proc.events)}; stderr: ${proc.stderr}`));
        return true;
      }
      if (!pred(event)) return false;
      clearTimeout(timer);
      resolve(event);
      return true;
    });
  });
  proc.event = (name, timeoutMs) => proc.waitFor((e) => e.event === name, `'${name}'`, timeoutMs);
  proc.exit = (timeoutMs = 10000) => new Promise((resolve, reject) => {
    if (proc.exited) return resolve(proc.exited);
    const timer = setTimeout(() => reject(new Error(`${fixture} did not exit within ${timeoutMs} ms; saw ${
      JSON.stringify(proc.events)}`)), timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
  proc.send = (line) => child.stdin.write(`${line}\n`);
  proc.kill = (signal = 'SIGKILL') => {
    if (proc.exited !== null) return;
    try {
      process.kill(-child.pid, signal);
    } catch {
      // Gone meanwhile.
    }
  };
  return proc;
}

function app(spec, options) {
  return start('handover-app.js', [JSON.stringify(spec)], options);
}

// Connects (to { port, host } or { path }) and resolves with the server's
// answer as `parse` reads it (undefined: not an answer, a rejection);
// rejects with the connection's error (ECONNREFUSED, ...).
function ask(target, parse) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(target);
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk) => { data += chunk; });
    socket.on('error', reject);
    socket.on('end', () => {
      const answer = parse(data.trim());
      if (answer !== undefined) resolve(answer); else reject(new Error(`answer: ${JSON.stringify(data)}`));
    });
    socket.setTimeout(5000, () => socket.destroy(new Error('no answer within 5 s')));
  });
}

// The pid the server answers with.
function askPid(target) {
  return ask(target, (data) => {
    const pid = Number.parseInt(data, 10);
    return Number.isInteger(pid) ? pid : undefined;
  });
}

// Keeps `parallel` loops calling `request` until stop(); resolves with how
// often each answer came (answer -> count) and the errors seen.
function hammer(request, parallel = 4) {
  let stopped = false;
  const answers = new Map();
  const errors = [];
  const loops = Array.from({ length: parallel }, async () => {
    while (!stopped) {
      try {
        const answer = await request();
        answers.set(answer, (answers.get(answer) ?? 0) + 1);
      } catch (err) {
        errors.push(err.code ?? err.message);
      }
    }
  });
  return {
    stop: async () => {
      stopped = true;
      await Promise.all(loops);
      return { answers, errors };
    },
  };
}

// An http GET of `/` on `target` ({ port, host } or { socketPath }) through
// `agent` (false: a fresh connection): resolves with the pid that answered
// and whether the request was sent again. As Node's documentation advises
// for keep-alive, a request whose reused connection was closed by the
// server before any response (the server closed it as idle) is sent again:
// the server never saw it.
function httpPid(target, agent = false) {
  const once = () => new Promise((resolve, reject) => {
    const req = http.get({ ...target, path: '/', agent }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => { data += chunk; });
      res.on('end', () => {
        const pid = Number.parseInt(data, 10);
        if (res.statusCode === 200 && Number.isInteger(pid)) resolve(pid);
        else reject(new Error(`answer ${res.statusCode}: ${JSON.stringify(data)}`));
      });
      res.on('error', reject);
    });
    req.on('error', (err) => {
      err.reused = req.reusedSocket;
      reject(err);
    });
    req.setTimeout(5000, () => req.destroy(new Error('no answer within 5 s')));
  });
  return once().then((pid) => ({ pid, retried: false }), (err) => {
    if (!err.reused || err.code !== 'ECONNRESET') throw err;
    return once().then((pid) => ({ pid, retried: true }));
  });
}

// A free TCP port on 127.0.0.1 (bound and closed at once).
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

// Connects to the control socket at `file`, writes `bytes`, and resolves
// with all it receives until the other side closes (or `timeoutMs`).
function converse(file, bytes, timeoutMs = 3000) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(file);
    const chunks = [];
    socket.on('connect', () => socket.write(bytes));
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks)));
    socket.setTimeout(timeoutMs, () => socket.destroy());
  });
}

// The frames of the protocol (src/handover/protocol.rs), written out by hand
// so that the tests check the wire format, not the encoder against itself.
const frames = {
  hello: (pid) => Buffer.concat([Buffer.from('RNHO\x01\x01\x00\x04', 'latin1'), u32(pid)]),
  refused: (code) => Buffer.from(`RNHO\x01\x09\x00\x01${String.fromCharCode(code)}`, 'latin1'),
  welcome: (pid) => Buffer.concat([Buffer.from('RNHO\x01\x02\x00\x04', 'latin1'), u32(pid)]),
};

function u32(n) {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

module.exports = { app, ask, askPid, converse, hammer, frames, freePort, httpPid, killAll, start, tempDir };
