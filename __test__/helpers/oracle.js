'use strict';

// Side-by-side testing: run one scenario on node:net and on rust-net and
// compare what a program can observe.

const assert = require('assert');
const net = require('net');
const nodeTest = require('node:test');
const rustNet = require('../..');

const implementations = [['node:net', net], ['rust-net', rustNet]];

// Everything observable about an error, with run-specific values (ports,
// paths) replaced by placeholders so two runs can be compared.
function describeError(err, replacements = {}) {
  if (!(err instanceof Error)) return { notAnError: String(err) };
  const scrub = (value) => {
    if (typeof value !== 'string') return value;
    let out = value;
    for (const [from, to] of Object.entries(replacements)) out = out.split(from).join(to);
    return out;
  };
  const own = {};
  for (const key of Object.keys(err).sort()) {
    const value = err[key];
    own[key] = typeof value === 'object' && value !== null ? '[object]' : scrub(value);
  }
  if (typeof own.port === 'number' && replacements[String(own.port)]) own.port = 'PORT';
  return {
    class: Object.getPrototypeOf(err).constructor.name,
    constructor: err.constructor.name,
    name: err.name,
    code: err.code,
    message: scrub(err.message),
    string: scrub(String(err)),
    own,
  };
}

function captureThrow(fn) {
  try {
    const value = fn();
    return { threw: false, returnedThis: value !== undefined };
  } catch (err) {
    return { threw: true, error: describeError(err) };
  }
}

// Replaces a bound port with a placeholder.
function describeAddress(address) {
  if (address === null || typeof address !== 'object') return address;
  return { ...address, port: address.port > 0 ? 'PORT' : address.port };
}

// Logs every event a server emits, in order, with a short description.
function recordEvents(emitter, log, replacements) {
  const emit = emitter.emit;
  emitter.emit = function(name, ...args) {
    if (name === 'error') log.push(['error', describeError(args[0], replacements?.())]);
    else if (name === 'connection') log.push(['connection']);
    else log.push([name, ...args.filter((a) => typeof a !== 'object')]);
    return emit.apply(this, [name, ...args]);
  };
}

// Counts the rust-net servers that emit 'listening' while `fn` runs, and
// how many of them were listening in Rust at that moment. Watches the
// prototype rather than each server, so scenarios see the same servers,
// listeners and constructors as without it.
async function watchingRustServers(fn) {
  const proto = rustNet.Server.prototype;
  const had = Object.prototype.hasOwnProperty.call(proto, 'emit');
  const ownEmit = proto.emit;
  const seen = { listened: 0, inRust: 0 };
  proto.emit = function(name, ...args) {
    if (name === 'listening') {
      seen.listened++;
      if (rustNet.isRustServer(this)) seen.inRust++;
    }
    return ownEmit.apply(this, [name, ...args]);
  };
  try {
    return { result: await fn(), seen };
  } finally {
    if (had) proto.emit = ownEmit;
    else delete proto.emit;
  }
}

// Runs `scenario(impl, name)` on both implementations, one after the other,
// and asserts both observations are equal. Returns node:net's.
//
// The comparison only means something if the rust-net side really listened
// in Rust: a silent fallback to Node's own listening socket (in
// takeOverHandle, or a binary that did not load) would compare node:net
// with itself. So every rust-net server that emitted 'listening' must have
// been listening in Rust then.
async function sameOnBoth(scenario) {
  assert.strictEqual(rustNet.native, true, 'the native part did not load: rust-net would be node:net');
  const observed = [];
  for (const [name, impl] of implementations) {
    if (impl !== rustNet) {
      observed.push(await scenario(impl, name));
      continue;
    }
    const { result, seen } = await watchingRustServers(() => scenario(impl, name));
    observed.push(result);
    assert.strictEqual(seen.inRust, seen.listened,
                       `${seen.listened - seen.inRust} of ${seen.listened} rust-net servers listened outside Rust`);
  }
  assert.deepStrictEqual(observed[1], observed[0],
                         'rust-net (actual) differs from node:net (expected)');
  return observed[0];
}

const ticks = () => new Promise((resolve) => setImmediate(resolve));
const once = (emitter, name) => new Promise((resolve) => emitter.once(name, resolve));

function closeServer(server) {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
  });
}

// node:test's test() with a default time limit, so a hang fails one test
// instead of stalling the whole run.
const DEFAULT_TIMEOUT_MS = 60_000;
function test(name, options, fn) {
  if (typeof options === 'function') return nodeTest.test(name, { timeout: DEFAULT_TIMEOUT_MS }, options);
  return nodeTest.test(name, { timeout: DEFAULT_TIMEOUT_MS, ...options }, fn);
}
test.before = nodeTest.before;
test.after = nodeTest.after;

module.exports = {
  test,
  captureThrow,
  closeServer,
  describeAddress,
  describeError,
  implementations,
  net,
  once,
  recordEvents,
  rustNet,
  sameOnBoth,
  ticks,
};
