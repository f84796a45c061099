/// <reference types="node" />
// rust-net: node:net with its listening sockets in Rust, a drop-in for
// `require('net')`. The types are node:net's own (from @types/node): every
// export of node:net (connect, Socket, isIP, BlockList, the option and
// address types, ...) is re-exported as it is; Server and createServer are
// declared here as the same shapes as net.Server and net.createServer(), so
// code written against node:net type-checks unchanged against rust-net:
// every listen() overload, net.ListenOptions, net.ServerOpts, the events and
// the EventEmitter statics come from the @types/node version the project uses.

import type * as net from 'net';

export * from 'net';

/** A rust-net server: a `net.Server` whose listening socket lives in Rust. */
export interface Server extends net.Server {}

/**
 * The static side of `Server`: constructible like `net.Server`, callable
 * without `new` like `net.Server`, and with the static members `net.Server`
 * inherits from EventEmitter (`Server.once(emitter, name)`, ...), since
 * rust-net's `Server` inherits from node:net's.
 */
export interface ServerConstructor extends Omit<typeof net.Server, 'prototype'> {
  new (connectionListener?: (socket: net.Socket) => void): Server;
  new (options?: net.ServerOpts, connectionListener?: (socket: net.Socket) => void): Server;
  /** Like node:net, `Server()` without `new` also constructs a server. */
  (connectionListener?: (socket: net.Socket) => void): Server;
  (options?: net.ServerOpts, connectionListener?: (socket: net.Socket) => void): Server;
  readonly prototype: Server;
}

export declare const Server: ServerConstructor;

/** Same signature and behaviour as `net.createServer()`. */
export declare function createServer(connectionListener?: (socket: net.Socket) => void): Server;
export declare function createServer(
  options?: net.ServerOpts,
  connectionListener?: (socket: net.Socket) => void,
): Server;

/**
 * True while `server` listens on a socket that rust-net's accept loop owns
 * (a rust-net server, or any net-based server under `rust-net/register`);
 * false before `listen()`, after `close()`, for node:net's own servers, and
 * for anything that is not a server.
 */
export declare function isRustServer(server: unknown): boolean;

/**
 * True when rust-net's native listener loaded. When it did not (no binary for
 * this platform, an install without scripts), rust-net serves through
 * node:net and warns once (RUST_NET_NATIVE_MISSING);
 * RUST_NET_REQUIRE_NATIVE=1 makes that an error.
 */
export declare const native: boolean;
