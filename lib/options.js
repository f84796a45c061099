'use strict';

// rust-net's own options, normalised in one place: what createServer() and
// listen() accept beyond node:net's options, and the environment variables
// that set their defaults for a whole process.

const net = require('net');

const kAcceptPlacement = Symbol('rust-net.acceptPlacement');
const kProxyProtocol = Symbol('rust-net.proxyProtocol');
const kReusePort = Symbol('rust-net.reusePort');
const kSocketOptions = Symbol('rust-net.socketOptions');
const kSocketOptionsListen = Symbol('rust-net.socketOptions.listen');

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
const { invalidArgType, invalidArgValue, outOfRange, readInteger } = require('./errors');
const { normalizeSocketOptions } = require('./socket-options');
const nodeHasReusePort = TCPConstants.UV_TCP_REUSEPORT !== undefined;

const PROXY_DEFAULTS = { untrusted: 'pass', missingHeader: 'reject', timeout: 5000, maxHeaderLength: 4096 };
const kShare = Symbol('rust-net.shareAcrossThreads');
const kPeerLimits = Symbol('rust-net.peerLimits');
const kOverload = Symbol('rust-net.overload');
const kShareListen = Symbol('rust-net.shareAcrossThreads.listen');

const PLACEMENTS = ['auto', 'runtime', 'event-loop'];
const PLACEMENT_ENV = 'RUST_NET_ACCEPT_PLACEMENT';


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

// --- Per-client limits (docs/overload.md) ---

const INT32_MAX = 2 ** 31 - 1;




const PEER_OPTIONS = ['maxConnectionsPerAddress', 'acceptRatePerAddress', 'perAddressIPv4Prefix',
                      'perAddressIPv6Prefix'];

// maxConnectionsPerAddress, acceptRatePerAddress ({ rate, burst }) and the
// prefixes addresses are grouped by, of createServer() or listen(), merged
// over `previous` (listen()'s win); undefined when none is set.
function normalizePeerLimits(options, previous) {
  if (!PEER_OPTIONS.some((key) => options[key] !== undefined)) return previous;
  const limits = { ...previous };
  if (options.maxConnectionsPerAddress !== undefined) {
    limits.maxConnections = readInteger(options.maxConnectionsPerAddress, 'options.maxConnectionsPerAddress',
                                        1, INT32_MAX);
  }
  const rate = options.acceptRatePerAddress;
  if (rate !== undefined) {
    const name = 'options.acceptRatePerAddress';
    if (rate === null || typeof rate !== 'object' || Array.isArray(rate)) {
      throw invalidArgType(name, 'an object such as { rate: 10, burst: 20 }', rate);
    }
    if (typeof rate.rate !== 'number') throw invalidArgType(`${name}.rate`, 'of type number', rate.rate);
    if (!(rate.rate > 0 && rate.rate <= 1e9)) throw outOfRange(`${name}.rate`, '> 0 && <= 1000000000', rate.rate);
    limits.rate = rate.rate;
    limits.burst = rate.burst === undefined ?
      Math.max(1, Math.ceil(rate.rate)) : readInteger(rate.burst, `${name}.burst`, 1, INT32_MAX);
  }
  if (options.perAddressIPv4Prefix !== undefined) {
    limits.ipv4Prefix = readInteger(options.perAddressIPv4Prefix, 'options.perAddressIPv4Prefix', 1, 32);
  }
  if (options.perAddressIPv6Prefix !== undefined) {
    limits.ipv6Prefix = readInteger(options.perAddressIPv6Prefix, 'options.perAddressIPv6Prefix', 1, 128);
  }
  return limits;
}

// The per-client limits for Rust (PeerLimitOptions in src/admission/peers.rs),
// or undefined when there are none: prefixes alone limit nothing.
function peerLimitOptions(server) {
  const limits = server[kPeerLimits];
  if (limits?.maxConnections === undefined && limits?.rate === undefined) return undefined;
  return {
    maxConnections: limits.maxConnections,
    rate: limits.rate,
    burst: limits.burst,
    ipv4Prefix: limits.ipv4Prefix ?? 32,
    ipv6Prefix: limits.ipv6Prefix ?? 64,
  };
}

// --- Load-aware accepting (docs/overload.md) ---

// pauseAcceptAfter when only shedAbove is given: a batch the event loop has
// left untaken for 25 ms (measured: `node bench/overload.js --sweep`, see
// docs/overload.md, "Choosing the values").
const DEFAULT_PAUSE_AFTER = 25;

// pauseAcceptAfter (ms) and shedAbove of createServer() or listen(), merged
// over `previous` (listen()'s win); undefined when neither is set.
function normalizeOverload(options, previous) {
  if (options.pauseAcceptAfter === undefined && options.shedAbove === undefined) return previous;
  const next = { ...previous };
  if (options.pauseAcceptAfter !== undefined) {
    next.pauseAfterMs = readInteger(options.pauseAcceptAfter, 'options.pauseAcceptAfter', 1, INT32_MAX);
  }
  if (options.shedAbove !== undefined) {
    next.shedAbove = readInteger(options.shedAbove, 'options.shedAbove', 0, INT32_MAX);
  }
  return next;
}

// Load-aware accepting for Rust (OverloadOptions in src/acceptor/overload.rs),
// or null when the server has none.
function overloadOptions(server) {
  const overload = server[kOverload];
  if (overload === undefined) return null;
  return { pauseAfterMs: overload.pauseAfterMs ?? DEFAULT_PAUSE_AFTER, shedAbove: overload.shedAbove };
}

// Node's ERR_INCOMPATIBLE_OPTION_PAIR, for the per-client limits or
// load-aware accepting with shareAcrossThreads (a shared group accepts for
// servers of several threads: their counts would not follow a connection to
// its thread yet).
function checkCombination(server) {
  const shared = server[kShareListen] ?? server[kShare];
  const limits = server[kPeerLimits];
  const overload = server[kOverload];
  const first = limits?.maxConnections !== undefined ? 'maxConnectionsPerAddress' :
    limits?.rate !== undefined ? 'acceptRatePerAddress' :
    overload?.pauseAfterMs !== undefined ? 'pauseAcceptAfter' :
    overload !== undefined ? 'shedAbove' : null;
  if (first && shared) {
    const err = new TypeError(`Option "${first}" cannot be used in combination with option "shareAcrossThreads"`);
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
  const socketOptions = normalizeSocketOptions(options);
  if (socketOptions !== null) server[kSocketOptions] = socketOptions;
  server[kPeerLimits] = normalizePeerLimits(options, undefined);
  server[kOverload] = normalizeOverload(options, undefined);
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
  server[kSocketOptionsListen] = null;
  if (options === null || typeof options !== 'object' || Array.isArray(options)) return;
  server[kShareListen] = readShare(options, 'options.shareAcrossThreads');
  server[kSocketOptionsListen] = normalizeSocketOptions(options);
  const proxy = normalizeProxyProtocol(options.proxyProtocol, 'options.proxyProtocol');
  if (proxy) server[kProxyProtocol] = proxy;
  server[kPeerLimits] = normalizePeerLimits(options, server[kPeerLimits]);
  server[kOverload] = normalizeOverload(options, server[kOverload]);
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
  const peers = peerLimitOptions(server);
  if (!proxy && !blockList && !peers) return null;
  // Absent members are undefined, not null: Rust reads them as options.
  return {
    blockRules: blockList && server.maxConnections == null ? blockList.rules : undefined,
    proxy: proxy ?? undefined,
    report: server.listenerCount('connectionRejected') > 0,
    peers,
  };
}

// The admission of a server sharing its socket across threads, for Rust:
// only proxyProtocol (the group reads headers before dispatch; the
// blockList stays JavaScript's there), or null.
function sharedAdmissionOptions(server) {
  const proxy = server[kProxyProtocol];
  if (!proxy) return null;
  return { proxy, report: server.listenerCount('connectionRejected') > 0 };
}

// Whether listen() asked for SO_REUSEPORT on a Node that cannot say so.
function reusePortRequested(server) {
  return server?.[kReusePort] === true;
}

// Whether `server`'s next bind shares its address across threads.
function shareAcrossThreads(server) {
  return server[kShareListen] ?? server[kShare] ?? false;
}

// The socket options of `server`'s next TCP bind (lib/socket-options.js):
// createServer()'s, each replaced by listen()'s of the same name; null when
// there are none.
function socketOptionsOf(server) {
  const own = server[kSocketOptions];
  const listen = server[kSocketOptionsListen];
  if (own == null && listen == null) return null;
  return { ...own, ...listen };
}

// Where `server` accepts: its own option, else the environment's, else auto.
function acceptPlacement(server) {
  const own = server?.[kAcceptPlacement];
  return own !== undefined && own !== 'auto' ? own : placementFromEnv();
}

module.exports = {
  PEER_OPTIONS,
  PLACEMENTS,
  acceptPlacement,
  admissionOptions,
  applyListenOptions,
  applyServerOptions,
  handoverOption,
  nodeHasBlockList,
  nodeHasReusePort,
  overloadOptions,
  reusePortRequested,
  shareAcrossThreads,
  socketOptionsOf,
  sharedAdmissionOptions,
};
