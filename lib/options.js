'use strict';

// rust-net's own options, normalised in one place: what createServer() and
// listen() accept beyond node:net's options, and the environment variables
// that set their defaults for a whole process.

const kAcceptPlacement = Symbol('rust-net.acceptPlacement');
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

// node:net's own wording for an option of the wrong type.
function invalidBoolean(name, value) {
  let received;
  if (value === null) received = 'null';
  else if (typeof value === 'function') received = `function ${value.name}`;
  else if (typeof value === 'object') received = `an instance of ${value.constructor?.name ?? 'Object'}`;
  else {
    let shown = typeof value === 'string' ? `'${value}'` : String(value);
    if (shown.length > 28) shown = `${shown.slice(0, 25)}...`;
    received = `type ${typeof value} (${shown})`;
  }
  const err = new TypeError(`The "${name}" property must be of type boolean. Received ${received}`);
  err.code = 'ERR_INVALID_ARG_TYPE';
  return err;
}

function readShare(options, name) {
  const value = options.shareAcrossThreads;
  if (value !== undefined && typeof value !== 'boolean') throw invalidBoolean(name, value);
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

// Reads createServer()'s `acceptPlacement` into `server` (throws like Node
// does for a bad option value).
function applyServerOptions(server, options) {
  const placement = options?.acceptPlacement;
  if (placement !== undefined && !PLACEMENTS.includes(placement)) {
    throw invalidArgValue('options.acceptPlacement', placement,
                          `must be one of: ${PLACEMENTS.map((p) => `'${p}'`).join(', ')}`);
  }
  if (placement !== undefined) server[kAcceptPlacement] = placement;
  const share = readShare(options, 'options.shareAcrossThreads');
  if (share !== undefined) server[kShare] = share;
}

// Reads listen()'s own `shareAcrossThreads` (over createServer()'s, for
// that listen()); `options` is listen()'s first argument, whatever it is.
function applyListenOptions(server, options) {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) return;
  server[kShareListen] = readShare(options, 'options.shareAcrossThreads');
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

module.exports = { PLACEMENTS, acceptPlacement, applyListenOptions, applyServerOptions, shareAcrossThreads };
