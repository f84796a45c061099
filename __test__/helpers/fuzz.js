'use strict';

// Differential fuzzing of the server API against node:net.
//
// Each case is a random sequence of calls — createServer() with random
// options, then listen() with random arguments, close(), getConnections(),
// ref()/unref(), address() — built twice from the same seed and run once on
// node:net and once on rust-net. What a program can observe must be equal:
// what each call threw (class, code, message), the events and callbacks that
// followed, and the final state.

const fs = require('fs');
const net = require('net');
const rustNet = require('../..');
const { describeError } = require('./oracle');

// mulberry32: small, fast, and the same sequence for the same seed.
function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function makeCase(seed, env) {
  const rnd = random(seed);
  const pick = (list) => list[Math.floor(rnd() * list.length)];
  const chance = (p) => rnd() < p;
  const throwing = (obj, key) => Object.defineProperty(obj, key, {
    enumerable: true, get() { throw new Error(`getter ${key} throws`); },
  });

  const ports = [0, 0, 0, '0', -1, 65536, 1.5, NaN, Infinity, '', ' ', '-1', '65536',
                 true, false, null, undefined, {}, [], env.busyPort, String(env.busyPort), '0x0', 1e3 + 0.5];
  // IP literals only: their dns.lookup() answers on the next tick, so both
  // runs see the same order of events. Host names take a thread-pool lookup
  // of varying length; they are covered by the regular tests.
  const hosts = ['127.0.0.1', '::1', '::', '0.0.0.0', '', null, undefined, 5,
                 '192.0.2.1', '::ffff:127.0.0.1', true];
  // No strings: a string second argument is a host name to listen(), and
  // host-name lookups finish at varying times (see hosts below).
  const backlogs = [511, 0, -1, 1, {}, 1.5, null, undefined, 1e9, true];
  let pathCount = 0;
  const socketPath = () => `${env.dir}/f${pathCount++}.sock`;
  const paths = [socketPath, socketPath, () => `\0rust-net-fuzz-${seed}`, () => '',
                 () => `${env.dir}/no/such/dir.sock`];
  const cb = () => {};

  const serverOptions = () => {
    if (chance(0.2)) return pick([undefined, null, 5, 'x', true, Symbol.for('x'), cb]);
    const o = {};
    for (const key of ['allowHalfOpen', 'pauseOnConnect', 'noDelay', 'keepAlive']) {
      if (chance(0.3)) o[key] = pick([true, false, 1, 0, 'yes', null]);
    }
    if (chance(0.3)) o.keepAliveInitialDelay = pick([0, 1000, -5, '1000', NaN, null, {}]);
    if (chance(0.3)) o.highWaterMark = pick([0, 1, 16384, -1, 'big', NaN, null]);
    if (chance(0.05)) throwing(o, pick(['allowHalfOpen', 'highWaterMark', 'keepAliveInitialDelay']));
    return o;
  };

  const listenOptions = () => {
    const o = {};
    const kind = rnd();
    if (kind < 0.6) o.port = pick(ports);
    else if (kind < 0.8) o.path = pick(paths)();
    else if (kind < 0.85) o.fd = pick([-1, 987, 1.5, '3', null]);
    if (chance(0.4)) o.host = pick(hosts);
    if (chance(0.2)) o.backlog = pick(backlogs);
    if (chance(0.15)) o.exclusive = pick([true, false, 1]);
    if (chance(0.15)) o.ipv6Only = pick([true, false, 'yes']);
    if (chance(0.1)) o.readableAll = pick([true, false]);
    if (chance(0.1)) o.writableAll = pick([true, false]);
    if (chance(0.1)) o.signal = pick([AbortSignal.abort(), new AbortController().signal, 'signal', {}, null]);
    if (chance(0.05)) throwing(o, pick(['port', 'host', 'path', 'backlog', 'signal']));
    return o;
  };

  const listenArgs = () => {
    const form = rnd();
    let args;
    if (form < 0.35) args = [listenOptions()];
    else if (form < 0.7) {
      args = [pick(ports)];
      if (chance(0.6)) args.push(pick(hosts));
      if (chance(0.3)) args.push(pick(backlogs));
    } else if (form < 0.85) args = [pick(paths)()].concat(chance(0.3) ? [pick(backlogs)] : []);
    else args = pick([[], [null], [undefined], [true], [Symbol('s')], [[]]]);
    if (chance(0.4)) args.push(cb);
    return args;
  };

  const ops = [];
  const count = 1 + Math.floor(rnd() * 4);
  for (let i = 0; i < count; i++) {
    const r = rnd();
    if (r < 0.55) ops.push(['listen', listenArgs()]);
    else if (r < 0.75) ops.push(['close', chance(0.6) ? [cb] : []]);
    else if (r < 0.82) ops.push(['getConnections', [chance(0.8) ? cb : undefined]]);
    else if (r < 0.89) ops.push([pick(['ref', 'unref']), []]);
    else ops.push(['address', []]);
  }
  const createArgs = chance(0.15) ? [] : chance(0.2) ? [serverOptions(), cb] : [serverOptions()];
  return { createArgs, ops };
}

// Runs one case on one implementation and returns what it observed.
async function runCase(impl, seed, env) {
  const { createArgs, ops } = makeCase(seed, env);
  const scrubs = { [String(env.busyPort)]: 'BUSY' };
  const scrub = (v) => (typeof v === 'string' ? v.split(env.dir).join('DIR').split(`${seed}`).join('SEED') : v);
  const describe = (err) => {
    const d = describeError(err, scrubs);
    return JSON.parse(JSON.stringify(d, (k, v) => scrub(v)));
  };
  const observed = [];
  let server;
  try {
    server = impl.createServer(...createArgs);
  } catch (err) {
    return [['createServer threw', describe(err)]];
  }
  env.servers.push(server);
  let pending = 0;
  let settle;
  const settled = new Promise((resolve) => { settle = resolve; });
  const emit = server.emit;
  server.emit = function(name, ...args) {
    if (name === 'error') observed.push(['event error', describe(args[0])]);
    else if (name === 'listening' || name === 'close') observed.push([`event ${name}`]);
    if (name === 'error' || name === 'listening' || name === 'close') settle();
    return emit.call(this, name, ...args);
  };
  server.on('error', () => {});
  for (const [name, args] of ops) {
    const wrapped = args.map((a) => (typeof a === 'function' ?
      (...cbArgs) => observed.push([`${name} callback`, ...cbArgs.map((x) =>
        (x instanceof Error ? describe(x) : typeof x === 'number' ? x : String(x)))]) : a));
    try {
      const ret = server[name](...wrapped);
      if (name === 'address') {
        observed.push(['address', typeof ret === 'object' && ret !== null ? { ...ret, port: ret.port > 0 ? 'PORT' : ret.port } : scrub(ret)]);
      } else {
        observed.push([name, ret === server ? 'this' : typeof ret]);
      }
      if (name === 'listen') pending++;
    } catch (err) {
      observed.push([`${name} threw`, describe(err)]);
    }
  }
  if (pending > 0) {
    await Promise.race([settled, new Promise((resolve) => setTimeout(resolve, 200))]);
  }
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  const address = server.address();
  observed.push(['final', server.listening,
                 address && typeof address === 'object' ? { ...address, port: 'PORT' } : scrub(address)]);
  server.emit = emit;
  // Anything arriving later must not change what was compared.
  const result = JSON.parse(JSON.stringify(observed));
  await new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(resolve);
  });
  return result;
}

// Creates what the cases need (a busy port, a directory for socket paths)
// and returns a cleanup function.
async function setup(dir) {
  const holder = net.createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => holder.once('listening', resolve));
  const env = { dir, busyPort: holder.address().port, servers: [] };
  const cleanupPaths = () => {
    for (const f of fs.readdirSync(dir)) fs.rmSync(`${dir}/${f}`, { force: true, recursive: true });
  };
  // A late host lookup can still start a server after its case ended.
  const close = () => {
    holder.close();
    for (const server of env.servers.splice(0)) server.close();
  };
  return { env, cleanupPaths, close };
}

// Runs `count` cases from `firstSeed`; returns the divergences.
async function fuzz(firstSeed, count, env, cleanupPaths, onProgress) {
  const divergences = [];
  for (let i = 0; i < count; i++) {
    const seed = firstSeed + i;
    const expected = await runCase(net, seed, env);
    cleanupPaths();
    const actual = await runCase(rustNet, seed, env);
    cleanupPaths();
    if (JSON.stringify(actual) !== JSON.stringify(expected)) {
      divergences.push({ seed, expected, actual });
    }
    if ((i + 1) % 200 === 0) {
      for (const server of env.servers.splice(0)) if (server.listening) server.close();
    }
    if (onProgress && (i + 1) % 1000 === 0) onProgress(i + 1, divergences.length);
  }
  return divergences;
}

module.exports = { fuzz, makeCase, runCase, setup };
