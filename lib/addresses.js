'use strict';

// Several addresses, one server (docs/addresses.md):
//
//   server.listen({ port: 8080, addresses: ['127.0.0.1', '::1'] })
//
// Node binds the first address as it binds `host` (its _listen2, its
// errors, its 'listening'); rust-net then binds every other address on the
// same port, each with a Rust listener of its own whose connections are
// handed to the first's `onconnection` — so the server has one
// 'connection' stream, one count of connections, one maxConnections, and
// one close() that closes them all. address() stays Node's: the first
// address. addresses() lists them all.

const net = require('net');
const { invalidArgType, invalidArgValue } = require('./errors');
const { uvExceptionWithHostPort } = require('./socket-options');

// The addresses after the first, for the server's pending listen().
const kMoreAddresses = Symbol('rust-net.moreAddresses');
// listen() options that `addresses` cannot be combined with.
const EXCLUSIVE = ['host', 'path', 'fd', 'handle', 'systemd'];

// listen()'s arguments with `addresses` replaced by `host: addresses[0]`,
// or null when it has no `addresses`; the rest are kept for _listen2. Throws
// as Node's listen() throws for bad options.
function addressesListenArgs(server, args, shared) {
  server[kMoreAddresses] = null;
  const options = args[0];
  if (options === null || typeof options !== 'object' || options.addresses === undefined) return null;
  // listen(server) or listen(handle): a server has addresses() of its own.
  if (options._handle != null || options.handle != null) return null;
  const { addresses } = options;
  if (!Array.isArray(addresses)) throw invalidArgType('options.addresses', 'an instance of Array', addresses);
  if (addresses.length === 0) throw invalidArgValue('options.addresses', addresses, 'must not be empty');
  const seen = new Set();
  addresses.forEach((address, i) => {
    const name = `options.addresses[${i}]`;
    if (typeof address !== 'string') throw invalidArgType(name, 'of type string', address);
    if (net.isIP(address) === 0) throw invalidArgValue(name, address, 'must be an IP address');
    if (seen.has(address)) throw invalidArgValue(name, address, 'is listed twice');
    seen.add(address);
  });
  const clash = EXCLUSIVE.find((key) => options[key] !== undefined && options[key] !== false);
  if (clash !== undefined) throw invalidArgValue('options.addresses', addresses, `cannot be combined with '${clash}'`);
  if (shared) throw invalidArgValue('options.addresses', addresses, "cannot be combined with 'shareAcrossThreads'");
  if (require('cluster').isWorker) {
    throw invalidArgValue('options.addresses', addresses, 'is not available in cluster workers');
  }
  server[kMoreAddresses] = addresses.slice(1);
  const rest = { ...options, host: addresses[0] };
  delete rest.addresses;
  return [rest, ...args.slice(1)];
}

// The addresses _listen2 must add to the server's handle (once), or null.
function takeMoreAddresses(server) {
  const more = server[kMoreAddresses] ?? null;
  server[kMoreAddresses] = null;
  return more !== null && more.length > 0 ? more : null;
}

// Binds and listens on each of `addresses` at the port the server's handle
// got, delivering into that handle's onconnection. `bindOne(address, port)`
// returns a Rust handle ready to listen, a libuv errno, or an Error (a
// refused socket option). On any failure everything is closed, the server
// is not listening, and the error is emitted on the next tick, as Node
// emits a failed listen. Returns the handles, or null after a failure.
function listenOnMore(server, addresses, backlog, bindOne) {
  const main = server._handle;
  const { port } = server.address();
  const handles = [];
  for (const address of addresses) {
    const handle = bindOne(address, port);
    let error = null;
    if (handle instanceof Error) {
      error = handle;
    } else if (typeof handle === 'number') {
      error = uvExceptionWithHostPort(handle, 'listen', address, port);
    } else {
      // Node's onconnection finds its server through the handle it is
      // called on: the first address's.
      handle.onconnection = (err, clientHandle) => Reflect.apply(main.onconnection, main, [err, clientHandle]);
      const err = handle.listen(backlog || 511);
      if (err) {
        handle.close();
        error = uvExceptionWithHostPort(err, 'listen', address, port);
      } else {
        handles.push(handle);
      }
    }
    if (error !== null) {
      for (const opened of handles) opened.close();
      main.close();
      server._handle = null;
      process.nextTick(() => server.emit('error', error));
      return null;
    }
  }
  return handles;
}

module.exports = { addressesListenArgs, listenOnMore, takeMoreAddresses };
