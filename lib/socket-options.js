'use strict';

// Socket options of a TCP listening socket (docs/socket-options.md): read
// from createServer() and listen() options, validated as Node validates its
// own, and normalised into the object src/sockopt.rs takes — in the kernel's
// units. Rust sets them between socket() and bind(); those meant for each
// connection (keep-alive, userTimeout, noDelay, congestion) are inherited by
// every accepted socket from the listener, so no connection costs a system
// call for them, neither in Rust nor in JavaScript.
//
// Node's own per-connection options (createServer's noDelay, keepAlive,
// keepAliveInitialDelay) are applied the same way: set on the listener as
// libuv would set them on each socket, and Node's own call for each
// connection (onconnection's setNoDelay/setKeepAlive) is answered without a
// system call by PresetTCP below. Node's Socket keeps its own record of what
// it set, so everything a program sees stays Node's.

const { TCP } = require('./wraps');
const { invalidArgType, invalidArgValue, readInteger: int } = require('./errors');

const INT32_MAX = 2 ** 31 - 1;
// The kernel's bounds (include/net/tcp.h): MAX_TCP_KEEPIDLE,
// MAX_TCP_KEEPINTVL (seconds), MAX_TCP_KEEPCNT; IFNAMSIZ and
// TCP_CA_NAME_MAX include the terminating NUL.
const MAX_TCP_KEEPIDLE = 32767;
const MAX_TCP_KEEPCNT = 127;
const IFNAMSIZ = 16;
const TCP_CA_NAME_MAX = 16;

// libuv's uv_tcp_keepalive on Linux, as every supported Node has it: with a
// delay of at least a second it also sets TCP_KEEPINTVL 1 and TCP_KEEPCNT
// 10; with none (or one the kernel refuses) only SO_KEEPALIVE.
const UV_KEEPALIVE_INTERVAL = 1;
const UV_KEEPALIVE_COUNT = 10;

// The names raw `socketOptions` may use instead of numbers (Linux values).
const LEVELS = { SOL_SOCKET: 1, IPPROTO_IP: 0, SOL_IP: 0, IPPROTO_TCP: 6, SOL_TCP: 6, IPPROTO_IPV6: 41, SOL_IPV6: 41 };
const NAMES = {
  SOL_SOCKET: {
    SO_DEBUG: 1, SO_REUSEADDR: 2, SO_DONTROUTE: 5, SO_SNDBUF: 7, SO_RCVBUF: 8, SO_KEEPALIVE: 9,
    SO_OOBINLINE: 10, SO_PRIORITY: 12, SO_LINGER: 13, SO_REUSEPORT: 15, SO_RCVLOWAT: 18,
    SO_BINDTODEVICE: 25, SO_MARK: 36, SO_INCOMING_CPU: 49, SO_BUSY_POLL: 46,
  },
  IPPROTO_IP: { IP_TOS: 1, IP_TTL: 2, IP_FREEBIND: 15, IP_TRANSPARENT: 19, IP_BIND_ADDRESS_NO_PORT: 24 },
  IPPROTO_TCP: {
    TCP_NODELAY: 1, TCP_MAXSEG: 2, TCP_CORK: 3, TCP_KEEPIDLE: 4, TCP_KEEPINTVL: 5, TCP_KEEPCNT: 6,
    TCP_SYNCNT: 7, TCP_LINGER2: 8, TCP_DEFER_ACCEPT: 9, TCP_WINDOW_CLAMP: 10, TCP_QUICKACK: 12,
    TCP_CONGESTION: 13, TCP_USER_TIMEOUT: 18, TCP_FASTOPEN: 23, TCP_NOTSENT_LOWAT: 25,
  },
  IPPROTO_IPV6: { IPV6_UNICAST_HOPS: 16, IPV6_V6ONLY: 26, IPV6_TCLASS: 67, IPV6_TRANSPARENT: 75, IPV6_FREEBIND: 78 },
};
for (const [alias, level] of [['SOL_IP', 'IPPROTO_IP'], ['SOL_TCP', 'IPPROTO_TCP'], ['SOL_IPV6', 'IPPROTO_IPV6']]) {
  NAMES[alias] = NAMES[level];
}

// The options, by name, with how each is read. Millisecond options
// (keepAliveInterval, like Node's keepAliveInitialDelay) become seconds.
const OPTIONS = {
  deferAccept: (v, n) => int(v, n, 0, INT32_MAX),
  fastOpen: (v, n) => int(v, n, 0, INT32_MAX),
  freebind: bool,
  transparent: bool,
  bindToDevice: (v, n) => cString(v, n, IFNAMSIZ, 'an interface name'),
  receiveBufferSize: (v, n) => int(v, n, 1, INT32_MAX),
  sendBufferSize: (v, n) => int(v, n, 1, INT32_MAX),
  keepAliveInterval: (v, n) => Math.trunc(int(v, n, 1000, MAX_TCP_KEEPIDLE * 1000) / 1000),
  keepAliveCount: (v, n) => int(v, n, 1, MAX_TCP_KEEPCNT),
  userTimeout: (v, n) => int(v, n, 0, INT32_MAX),
  congestion: (v, n) => cString(v, n, TCP_CA_NAME_MAX, 'a congestion control name'),
  socketOptions: rawOptions,
};
const OPTION_NAMES = Object.keys(OPTIONS);






function bool(value, name) {
  if (typeof value !== 'boolean') throw invalidArgType(name, 'of type boolean', value);
  return value;
}

function cString(value, name, size, what) {
  if (typeof value !== 'string') throw invalidArgType(name, 'of type string', value);
  const length = Buffer.byteLength(value);
  if (length === 0 || length >= size || value.includes('\0')) {
    throw invalidArgValue(name, value, `must be ${what} of 1 to ${size - 1} bytes`);
  }
  return value;
}

// A level or option name of a raw entry: a number, or a name of the tables.
function rawNumber(value, name, table) {
  if (typeof value === 'string') {
    const number = table?.[value];
    if (number === undefined) {
      throw invalidArgValue(name, value, `must be a number or one of: ${Object.keys(table ?? {}).join(', ')}`);
    }
    return number;
  }
  return int(value, name, 0, INT32_MAX);
}

// `socketOptions: [{ level, name, value }]`: each value an int32, a boolean
// (an int 0 or 1) or the option's bytes (a Buffer, TypedArray or DataView).
function rawOptions(list, prefix) {
  if (!Array.isArray(list)) throw invalidArgType(prefix, 'an instance of Array', list);
  return list.map((entry, i) => {
    const name = `${prefix}[${i}]`;
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
      throw invalidArgType(name, 'of type object', entry);
    }
    for (const key of Object.keys(entry)) {
      if (key !== 'level' && key !== 'name' && key !== 'value') {
        throw invalidArgValue(`${name}.${key}`, entry[key], 'is not a socket option field (level, name, value)');
      }
    }
    const level = rawNumber(entry.level, `${name}.level`, LEVELS);
    const levelKey = typeof entry.level === 'string' ? entry.level :
      Object.keys(LEVELS).find((key) => LEVELS[key] === level);
    const option = rawNumber(entry.name, `${name}.name`, NAMES[levelKey]);
    const { value } = entry;
    if (typeof value === 'boolean') return { level, name: option, int: value ? 1 : 0 };
    if (typeof value === 'number') return { level, name: option, int: int(value, `${name}.value`, -(2 ** 31), INT32_MAX) };
    if (ArrayBuffer.isView(value)) {
      return { level, name: option, bytes: Array.from(new Uint8Array(value.buffer, value.byteOffset, value.byteLength)) };
    }
    throw invalidArgType(`${name}.value`, 'of type number or boolean, or an instance of Buffer, TypedArray or DataView', value);
  });
}

// The socket options among `options` (createServer()'s or listen()'s),
// validated and in Rust's shape; null when there are none. `where` is the
// argument's name in errors ('options').
function normalizeSocketOptions(options, where = 'options') {
  let spec = null;
  for (const key of OPTION_NAMES) {
    const value = options[key];
    if (value === undefined) continue;
    spec ??= {};
    const normalised = OPTIONS[key](value, `${where}.${key}`);
    spec[key === 'socketOptions' ? 'raw' : key] = normalised;
  }
  if (spec !== null && process.platform !== 'linux') {
    const err = new Error(`rust-net: socket options (${Object.keys(spec).join(', ')}) are available on Linux only`);
    err.code = 'ERR_FEATURE_UNAVAILABLE_ON_PLATFORM';
    throw err;
  }
  return spec;
}

// Which of Node's own per-connection calls the listener's options already
// answer (bits of PresetTCP's skip set).
const PRESET_NO_DELAY = 1;
const PRESET_KEEP_ALIVE = 2;

// The bind's socket options for a server: its own (createServer() ones,
// then listen()'s), plus Node's noDelay and keepAlive as libuv would set
// them on each socket. Returns { spec, preset, keepAliveDelay } or null.
// `nodeOptions` is false where the listener's socket may not be this
// server's own (a group shared across threads it joins), so that Node keeps
// setting those per connection itself.
function bindSocketOptions(server, own, nodeOptions) {
  if (process.platform !== 'linux') nodeOptions = false;
  const spec = own === null ? {} : { ...own };
  let preset = 0;
  let keepAliveDelay = 0;
  if (nodeOptions && server.noDelay === true) {
    spec.noDelay = true;
    preset |= PRESET_NO_DELAY;
  }
  if (nodeOptions && server.keepAlive === true) {
    spec.keepAlive = true;
    keepAliveDelay = server.keepAliveInitialDelay;
    if (Number.isInteger(keepAliveDelay) && keepAliveDelay >= 1 && keepAliveDelay <= MAX_TCP_KEEPIDLE) {
      spec.keepAliveInitialDelay = keepAliveDelay;
      spec.keepAliveInterval ??= UV_KEEPALIVE_INTERVAL;
      spec.keepAliveCount ??= UV_KEEPALIVE_COUNT;
    }
    preset |= PRESET_KEEP_ALIVE;
  }
  if (own === null && preset === 0) return null;
  return { spec, preset, keepAliveDelay };
}

// The client handle whose first setNoDelay(true)/setKeepAlive(true, delay)
// — Node's onconnection applying the server's noDelay/keepAlive — is
// answered without a system call, because the accepted socket already has
// that setting from its listener. Only the handle being delivered, only
// those first calls: any later call (the program's) reaches libuv.
let presetHandle = null;
let presetBits = 0;
let presetDelay = 0;

class PresetTCP extends TCP {
  setNoDelay(enable) {
    if (this === presetHandle && (presetBits & PRESET_NO_DELAY) !== 0 && enable === true) {
      presetBits &= ~PRESET_NO_DELAY;
      return 0;
    }
    return super.setNoDelay(enable);
  }

  setKeepAlive(enable, delay) {
    if (this === presetHandle && (presetBits & PRESET_KEEP_ALIVE) !== 0 && enable === true &&
        delay === presetDelay) {
      presetBits &= ~PRESET_KEEP_ALIVE;
      return 0;
    }
    return super.setKeepAlive(enable, delay);
  }
}

// Marks `clientHandle` as the one about to be delivered with `preset`
// (null: none); unmark with startDelivery(null).
function startDelivery(clientHandle, preset, delay) {
  presetHandle = clientHandle;
  presetBits = clientHandle === null ? 0 : preset;
  presetDelay = delay;
}

// Node's UVExceptionWithHostPort (not public): `${syscall} ${code}: ...`
// with the address, and code, errno, syscall, address, port; `note` goes
// after the description.
function uvExceptionWithHostPort(errno, syscall, address, port, note = '') {
  const [code, description] = require('util').getSystemErrorMap().get(errno) ?? ['UNKNOWN', 'unknown error'];
  let details = '';
  if (port > 0) details = ` ${address}:${port}`;
  else if (address) details = ` ${address}`;
  const err = new Error(`${syscall} ${code}: ${description}${note}${details}`);
  err.code = code;
  err.errno = errno;
  err.syscall = syscall;
  err.address = address;
  if (port) err.port = port;
  return err;
}

// The error of a listen() whose socket option the kernel refused: Node's
// shape, with syscall 'setsockopt' and `option`, the option's name.
function socketOptionError(errno, option, address, port) {
  const err = uvExceptionWithHostPort(errno, 'setsockopt', address, port, ` (${option})`);
  err.option = option;
  return err;
}

module.exports = {
  OPTION_NAMES,
  PresetTCP,
  bindSocketOptions,
  normalizeSocketOptions,
  socketOptionError,
  startDelivery,
  uvExceptionWithHostPort,
};
