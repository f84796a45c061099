/// <reference types="node" />
// rust-net: Node's net.Server with its listening sockets in Rust.
// The types are node:net's own (from @types/node), so code written against
// net.Server type-checks unchanged against rust-net: every listen() overload,
// net.ListenOptions, net.ServerOpts, the events and the EventEmitter statics
// come from the @types/node version the project uses.

import type * as net from 'net';

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
