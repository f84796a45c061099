'use strict';

// npm run stress [-- storm|load|workers|fuzz ...]: bounded stress runs on
// loopback that stop by themselves and print their figures. With no
// arguments, all of them.
//
//   storm   100,000 short connections at concurrency 256 against a rust-net
//           server in a child process; its descriptor count must return to
//           where it started (0 leaked).
//   load    10,000 connections held open at once, each served a round trip.
//   workers 100 worker threads terminated while listening and accepting:
//           no crash, no hang, port freed, no descriptor or thread leaked.
//   fuzz    100,000 differential cases against node:net (stress/fuzz.js).

const fs = require('fs');
const net = require('net');
const path = require('path');
const { fork } = require('child_process');
const { Worker } = require('worker_threads');

const once = (emitter, name) => new Promise((resolve) => emitter.once(name, resolve));
// Several loopback source addresses, so 100,000 connections do not run out
// of ephemeral ports to TIME_WAIT.
const SOURCES = ['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'];

function startServer() {
  const child = fork(path.join(__dirname, 'server-child.js'), [], { stdio: 'inherit' });
  const ask = (msg) => new Promise((resolve) => {
    child.once('message', resolve);
    child.send(msg);
  });
  return once(child, 'message').then((hello) => ({ child, port: hello.port, startFds: hello.fds, ask }));
}

// One round trip: connect, send a byte, read the reply, close.
function roundTrip(port, localAddress) {
  return new Promise((resolve) => {
    const c = net.connect({ port, host: '127.0.0.1', localAddress });
    c.on('connect', () => c.write('x'));
    c.on('data', () => c.end());
    c.on('error', (e) => resolve(e.code));
    c.on('close', () => resolve('ok'));
  });
}

async function storm(total = 100_000, concurrency = 256, limitSeconds = 600) {
  const { child, port, ask } = await startServer();
  const before = await ask('count');
  const deadline = Date.now() + limitSeconds * 1000;
  const results = new Map();
  let started = 0;
  const t0 = Date.now();
  const lane = async (i) => {
    while (started < total && Date.now() < deadline) {
      started++;
      const r = await roundTrip(port, SOURCES[(started + i) % SOURCES.length]);
      results.set(r, (results.get(r) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, i) => lane(i)));
  const seconds = (Date.now() - t0) / 1000;
  let after = await ask('count');
  for (let i = 0; i < 50 && after.fds > before.fds; i++) {
    await new Promise((r) => setTimeout(r, 100));
    after = await ask('count');
  }
  await ask('close');
  child.kill();
  const leaked = after.fds - before.fds;
  console.log(`storm: ${started} connections at concurrency ${concurrency} in ${seconds.toFixed(1)} s ` +
              `(${Math.round(started / seconds)}/s); results ${JSON.stringify(Object.fromEntries(results))}; ` +
              `server accepted ${after.accepted}; server descriptors ${before.fds} -> ${after.fds}: ${leaked} leaked`);
  return leaked === 0 && started === total;
}

async function load(count = 10_000) {
  const { child, port, ask } = await startServer();
  const before = await ask('count');
  const clients = [];
  const t0 = Date.now();
  for (let i = 0; i < count; i++) {
    const c = net.connect({ port, host: '127.0.0.1', localAddress: SOURCES[i % SOURCES.length] });
    c.on('error', () => {});
    clients.push(new Promise((resolve) => c.once('connect', () => resolve(c)).once('error', () => resolve(null))));
    if (i % 500 === 499) await new Promise((r) => setImmediate(r));
  }
  const sockets = (await Promise.all(clients)).filter(Boolean);
  let held = await ask('count');
  for (let i = 0; i < 100 && held.open < sockets.length; i++) {
    await new Promise((r) => setTimeout(r, 50));
    held = await ask('count');
  }
  // Every held connection is served a round trip while all are open.
  const served = await Promise.all(sockets.map((c) => new Promise((resolve) => {
    c.once('data', () => resolve(true));
    c.write('x');
  })));
  const seconds = (Date.now() - t0) / 1000;
  sockets.forEach((c) => c.destroy());
  let after = await ask('count');
  for (let i = 0; i < 100 && after.fds > before.fds; i++) {
    await new Promise((r) => setTimeout(r, 50));
    after = await ask('count');
  }
  await ask('close');
  child.kill();
  const ok = served.filter(Boolean).length;
  console.log(`load: ${sockets.length}/${count} connected, ${held.open} held open at once by the server, ` +
              `${ok} served while all open, in ${seconds.toFixed(1)} s; server descriptors ` +
              `${before.fds} -> ${after.fds} after all closed`);
  return held.open === count && ok === count && after.fds === before.fds;
}

async function workers(rounds = 100) {
  const root = path.join(__dirname, '..');
  const code = `
    const { parentPort } = require('worker_threads');
    const s = require(${JSON.stringify(root)}).createServer((c) => { c.on('error', () => {}); c.write('w'); });
    s.listen(0, '127.0.0.1', () => parentPort.postMessage(s.address().port));
  `;
  const fds = () => fs.readdirSync('/proc/self/fd').length;
  const threads = () => fs.readdirSync('/proc/self/task').length;
  const round = async (i) => {
    const w = new Worker(code, { eval: true });
    const port = await once(w, 'message');
    const clients = [];
    for (let j = 0; j < 20; j++) clients.push(net.connect(port, '127.0.0.1').on('error', () => {}));
    await new Promise((r) => setTimeout(r, i % 5));
    await w.terminate();
    clients.forEach((c) => c.destroy());
    await new Promise((resolve, reject) => {
      const probe = net.createServer().once('error', reject);
      probe.listen(port, '127.0.0.1', () => probe.close(resolve));
    });
  };
  await round(0);
  const fd0 = fds();
  const t0 = threads();
  const started = Date.now();
  for (let i = 1; i <= rounds; i++) await round(i);
  let fd1 = fds();
  for (let i = 0; i < 50 && fd1 > fd0; i++) {
    await new Promise((r) => setTimeout(r, 100));
    fd1 = fds();
  }
  console.log(`workers: ${rounds} workers terminated while accepting in ` +
              `${((Date.now() - started) / 1000).toFixed(1)} s; ports freed; descriptors ${fd0} -> ${fd1}, ` +
              `threads ${t0} -> ${threads()}`);
  return fd1 === fd0 && threads() === t0;
}

const runs = {
  storm: () => storm(),
  load: () => load(),
  workers: () => workers(),
  fuzz: () => require('./fuzz').main(100_000, 1),
};

async function main() {
  const names = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(runs);
  let failed = 0;
  for (const name of names) {
    if (!runs[name]) throw new Error(`unknown stress run ${name}; one of ${Object.keys(runs).join(', ')}`);
    const ok = await runs[name]();
    if (!ok) failed++;
    console.log(`${name}: ${ok ? 'PASS' : 'FAIL'}`);
  }
  console.log(`${names.length - failed} passed, ${failed} failed`);
  process.exitCode = failed ? 1 : 0;
}

main();
