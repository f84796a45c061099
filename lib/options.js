'use strict';

// rust-net's own options, normalised in one place: what createServer() and
// listen() accept beyond node:net's options, and the environment variables
// that set their defaults for a whole process.

const net = require('net');

const kAcceptPlacement = Symbol('rust-net.acceptPlacement');
const kProxyProtocol = Symbol('rust-net.proxyProtocol');
const kReusePort = Symbol('rust-net.reusePort');

// What the running Node does itself: a Server keeps a valid `blockList`
// and checks it on each connection (Node 22.13+), and listen() knows
// `reusePort` (Node 22.12+). Asked of Node, not derived from its version.
const NodeServer = net.Server;
const nodeHasBlockList = (() => {
  try {
    return new NodeServer({ blockList: new net.BlockList() }).blockList !== undefined;
  } catch {
    return false;
  }
})();
const { TCPConstants } = require('./wraps');
const nodeHasReusePort = TCPConstants.UV_TCP_REUSEPORT !== undefined;

const PROXY_DEFAULTS = { untrusted: 'pass', missingHeader: 'reject', timeout: 5000, maxHeaderLength: 4096 };
const kShare = Symbol('rust-net.shareAcrossThreads');
const kShareListen = Symbol('rust-net.shareAcrossThreads.listen');

const PLACEMENTS = ['auto', 'runtime', 'event-loop'];
const PLACEMENT_ENV = 'RUST_NET_ACCEPT_PLACEMENT';

// An ERR_INVALID_ARG_VALUE TypeError worded as Node words its own.
function invalidArgValue(name, value, reason) {
  const received = typeof value === 'string' ? `'${value}'` : String(value);
  const err = new TypeError(`The property '${name}' ${reason}. Received ${received}`);
  err.code = 'ERR_INVALID_ARG_VALUE';
  return err;
}

function readShare(options, name) {
  const value = options.shareAcrossThreads;
  if (value !== undefined && typeof value !== 'boolean') throw invalidArgType(name, 'of type boolean', value);
  return value;
}

let envPlacement;
// The process-wide default from RUST_NET_ACCEPT_PLACEMENT, read once; an
// unknown value is warned about (once) and ignored.
function placementFromEnv() {
  if (envPlacement !== undefined) return envPlacement;
  const value = process.env[PLACEMENT_ENV];
  envPlacement = 'auto';
  if (value === undefined || value === '') return envPlacement;
  if (PLACEMENTS.includes(value)) {
    envPlacement = value;
  } else {
    process.emitWarning(
      `${PLACEMENT_ENV}=${value} is not one of ${PLACEMENTS.join(', ')}; using auto`,
      { code: 'RUST_NET_BAD_ACCEPT_PLACEMENT' });
  }
  return envPlacement;
}

// How Node describes a value it received ("type string ('x')", "an
// instance of Object"), for errors worded as Node's.
function describeReceived(value) {
  if (value == null) return ` ${value}`;
  if (typeof value === 'function') return ` function ${value.name}`;
  if (typeof value === 'object') {
    const name = value.constructor?.name;
    return name ? ` an instance of ${name}` : ' [object]';
  }
  let shown = String(value);
  if (shown.length > 28) shown = `${shown.slice(0, 25)}...`;
  if (typeof value === 'string') shown = `'${shown}'`;
  return ` type ${typeof value} (${shown})`;
}

function invalidArgType(name, expected, value) {
  const err = new TypeError(`The "${name}" property must be ${expected}. Received${describeReceived(value)}`);
  err.code = 'ERR_INVALID_ARG_TYPE';
  return err;
}

function oneOf(name, value, allowed) {
  if (!allowed.includes(value)) {
    throw invalidArgValue(name, value, `must be one of: ${allowed.map((p) => `'${p}'`).join(', ')}`);
  }
  return value;
}

// The rules of a `trusted` list — address and CIDR strings, or a BlockList
// (its rules, in Node's format, as they are now) — parsed by Rust once,
// here, into the numbers each listen() hands back to it.
function trustedRules(trusted, name) {
  let list;
  if (trusted instanceof net.BlockList) {
    list = trusted.rules;
  } else {
    list = typeof trusted === 'string' ? [trusted] : trusted;
    if (!Array.isArray(list) || list.length === 0 || !list.every((t) => typeof t === 'string')) {
      throw invalidArgType(name, 'a net.BlockList, a string or a non-empty array of strings', trusted);
    }
  }
  const { words, error } = require('./native').parseRules(list);
  if (error != null) throw invalidArgValue(name, list.join(', '), `must list addresses or CIDR ranges (${error})`);
  return words;
}

// `proxyProtocol` of createServer() or listen(), normalised for Rust; null
// when off. Throws as Node throws for bad option values.
function normalizeProxyProtocol(value, name) {
  if (value === undefined || value === null || value === false) return null;
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw invalidArgType(name, 'an object such as { trusted: [\'10.0.0.0/8\'] }', value);
  }
  const timeout = value.timeout ?? PROXY_DEFAULTS.timeout;
  if (!Number.isInteger(timeout) || timeout < 1 || timeout > 2 ** 31 - 1) {
    throw invalidArgValue(`${name}.timeout`, timeout, 'must be an integer number of milliseconds >= 1');
  }
  // The bounds are the protocol's, defined once in Rust (MAX_HEADER_LEN_MIN
  // and _MAX in crates/admission/src/proxy/mod.rs: 16 + 216, the longest
  // header without TLVs, and 16 + 65535, the longest there is) and exported
  // by the addon. Only reached with the addon loaded: without it
  // proxyProtocol is refused before this (lib/fallback.js).
  const { PROXY_MAX_HEADER_LENGTH_MIN: min, PROXY_MAX_HEADER_LENGTH_MAX: max } = require('./native');
  const maxHeaderLength = value.maxHeaderLength ?? PROXY_DEFAULTS.maxHeaderLength;
  if (!Number.isInteger(maxHeaderLength) || maxHeaderLength < min || maxHeaderLength > max) {
    throw invalidArgValue(`${name}.maxHeaderLength`, maxHeaderLength, `must be an integer from ${min} to ${max}`);
  }
  return {
    trusted: trustedRules(value.trusted, `${name}.trusted`),
    untrusted: oneOf(`${name}.untrusted`, value.untrusted ?? PROXY_DEFAULTS.untrusted, ['pass', 'reject']),
    missingHeader: oneOf(`${name}.missingHeader`, value.missingHeader ?? PROXY_DEFAULTS.missingHeader,
                         ['reject', 'pass']),
    timeoutMs: timeout,
    maxHeaderLength,
  };
}

// Node's ERR_INCOMPATIBLE_OPTION_PAIR, for proxyProtocol with
// shareAcrossThreads (the header's addresses would not follow a connection
// to another thread yet).
function checkCombination(server) {
  if (server[kProxyProtocol] && (server[kShareListen] ?? server[kShare])) {
    const err = new TypeError('Option "proxyProtocol" cannot be used in combination with option "shareAcrossThreads"');
    err.code = 'ERR_INCOMPATIBLE_OPTION_PAIR';
    throw err;
  }
}

// `handover` of createServer() or listen() (docs/handover.md): the path of
// the control socket, or false to keep this server out of RUST_NET_HANDOVER.
const kHandover = Symbol('rust-net.handover');
function readHandover(server, options, name) {
  const value = options.handover;
  if (value === undefined) return;
  if (value !== false && typeof value !== 'string') {
    throw invalidArgType(name, 'of type string or false', value);
  }
  if (value === '' || (typeof value === 'string' && value.includes('\0'))) {
    throw invalidArgValue(name, value.replace(/\0/g, '\\0'), 'must be a non-empty path without null bytes');
  }
  server[kHandover] = value;
}

// The `handover` option of `server`: a path, false (off), or undefined.
function handoverOption(server) {
  return server[kHandover];
}

// Reads createServer()'s rust-net options into `server` (throws like Node
// does for a bad option value): acceptPlacement, proxyProtocol, and
// blockList where the running Node does not know it.
function applyServerOptions(server, options) {
  const placement = options?.acceptPlacement;
  if (placement !== undefined) {
    server[kAcceptPlacement] = oneOf('options.acceptPlacement', placement, PLACEMENTS);
  }
  const proxy = normalizeProxyProtocol(options.proxyProtocol, 'options.proxyProtocol');
  if (proxy) server[kProxyProtocol] = proxy;
  const share = readShare(options, 'options.shareAcrossThreads');
  if (share !== undefined) server[kShare] = share;
  checkCombination(server);
  readHandover(server, options, 'options.handover');
  if (!nodeHasBlockList && options.blockList) {
    // Node 22.13's check and message, and its public property.
    if (!(options.blockList instanceof net.BlockList)) {
      throw invalidArgType('options.blockList', 'an net.BlockList', options.blockList);
    }
    server.blockList = options.blockList;
  }
}

// Reads listen()'s rust-net options (proxyProtocol, shareAcrossThreads;
// reusePort where the running Node does not know it) into `server`;
// `options` is listen()'s first argument, whatever it is.
function applyListenOptions(server, options) {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) return;
  server[kShareListen] = readShare(options, 'options.shareAcrossThreads');
  const proxy = normalizeProxyProtocol(options.proxyProtocol, 'options.proxyProtocol');
  if (proxy) server[kProxyProtocol] = proxy;
  checkCombination(server);
  readHandover(server, options, 'options.handover');
  if (!nodeHasReusePort) {
    server[kReusePort] = options.reusePort === true;
    // As Node 22.12: a reusePort server binds in a cluster worker itself.
    if (options.reusePort === true) options.exclusive = true;
  }
}

// What admission the server's listening socket needs, for Rust; null when
// none. `blockRules` is left out while maxConnections is set: Node checks
// maxConnections before the blockList (a blocked peer over the limit is a
// 'drop'), which only JavaScript can see.
function admissionOptions(server) {
  const proxy = server[kProxyProtocol] ?? null;
  const blockList = server.blockList instanceof net.BlockList ? server.blockList : null;
  if (!proxy && !blockList) return null;
  // Absent members are undefined, not null: Rust reads them as options.
  return {
    blockRules: blockList && server.maxConnections == null ? blockList.rules : undefined,
    proxy: proxy ?? undefined,
    report: server.listenerCount('connectionRejected') > 0,
  };
}

// Whether listen() asked for SO_REUSEPORT on a Node that cannot say so.
function reusePortRequested(server) {
  return server?.[kReusePort] === true;
}

// Whether `server`'s next bind shares its address across threads.
function shareAcrossThreads(server) {
  return server[kShareListen] ?? server[kShare] ?? false;
}

// Where `server` accepts: its own option, else the environment's, else auto.
function acceptPlacement(server) {
  const own = server?.[kAcceptPlacement];
  return own !== undefined && own !== 'auto' ? own : placementFromEnv();
}

module.exports = {
  PLACEMENTS,
  acceptPlacement,
  admissionOptions,
  applyListenOptions,
  applyServerOptions,
  handoverOption,
  nodeHasBlockList,
  nodeHasReusePort,
  reusePortRequested,
  shareAcrossThreads,
};
