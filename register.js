'use strict';

// rust-net/register: a preload that puts rust-net in place of node:net's
// server for the whole process.
//
//   node -r rust-net/register app.js          (CommonJS)
//   node --import rust-net/register app.mjs   (ES modules)
//
// After it has run, `require('net').createServer` and `require('net').Server`
// are rust-net's (`server instanceof net.Server` holds), and so are the named
// exports of `node:net` seen by `import { createServer, Server } from
// 'node:net'`. Everything Node itself reaches through the `net` module object
// at run time follows: the server a child process receives over IPC, the
// cluster primary's round-robin server, and http/https/tls servers when those
// modules are loaded after this one (their Server classes extend whatever
// `net.Server` is when they load, so they listen in Rust too). Nothing else
// of node:net is touched; sockets and clients stay Node's own.

const Module = require('module');
const net = require('net');
const { Server, createServer } = require('./index.js');

// The server classes of these builtins extend the `net.Server` they saw when
// they were loaded, but call `net.Server` afresh on every construction.
const SERVER_SUBCLASS_MODULES = ['_http_server', '_tls_wrap'];

function loadedBuiltins() {
  const loaded = new Set();
  for (const entry of process.moduleLoadList) {
    if (entry.startsWith('NativeModule ')) loaded.add(entry.slice('NativeModule '.length));
  }
  return loaded;
}

// Whether rust-net's Server, called as the parent constructor of a class that
// extends Node's own net.Server (as an already loaded http.Server does),
// initializes that object rather than returning a new one.
function chainsForeignSubclasses() {
  const probe = Object.create(net.Server.prototype);
  Reflect.apply(Server, probe, [{}]);
  return probe._connections === 0;
}

function register() {
  if (net.Server === Server && net.createServer === createServer) return;

  const early = SERVER_SUBCLASS_MODULES.filter((id) => loadedBuiltins().has(id));
  if (early.length > 0 && !chainsForeignSubclasses()) {
    // Their constructors would call rust-net's Server on an object that is
    // not a rust-net server, which builds a separate server instead of
    // initializing that object.
    process.emitWarning(
      `rust-net/register ran after ${early.join(', ')} had been loaded: ` +
      'http, https and tls servers created from now on miss net.Server\'s ' +
      'initialization. Make rust-net/register the first -r/--import.',
      { code: 'RUST_NET_REGISTER_LATE' });
  }

  net.Server = Server;
  net.createServer = createServer;
  // Named exports of builtins seen by ES modules are snapshots until synced.
  Module.syncBuiltinESMExports();
}

register();

module.exports = { Server, createServer };
