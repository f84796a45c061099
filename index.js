'use strict';

// rust-net: Node's net.Server with its listening sockets in Rust.
// `createServer()` and `Server` are drop-in replacements for node:net's.

const { Server, createServer } = require('./lib/server');

module.exports = { Server, createServer };
