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

function register() {
  if (net.Server === Server && net.createServer === createServer) return;

  // http/https/tls loaded before this preload extend Node's own Server; its
  // constructor (rust-net's Server, when they call net.Server) sets them up
  // in place, and they keep listening the Node way.
  net.Server = Server;
  net.createServer = createServer;
  // Named exports of builtins seen by ES modules are snapshots until synced.
  Module.syncBuiltinESMExports();
}

register();

module.exports = { Server, createServer };
