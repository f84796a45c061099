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

/** Where a server accepts connections (README: "Accept placement"). */
export type AcceptPlacement = 'auto' | 'runtime' | 'event-loop';

/** `proxyProtocol`: read a PROXY protocol v1/v2 header from trusted peers. */
export interface ProxyProtocolOptions {
  /** The peers allowed to send a header: addresses and CIDR ranges, or a BlockList. */
  trusted: string | readonly string[] | net.BlockList;
  /** A peer that is not trusted: served as a direct client (default) or closed. */
  untrusted?: 'pass' | 'reject';
  /** A trusted peer that sends no header: closed (default) or served as a direct client. */
  missingHeader?: 'reject' | 'pass';
  /** Milliseconds a trusted peer has to send its whole header (default 5000). */
  timeout?: number;
  /** The largest header accepted, in bytes (default 4096, 232 to 65551). */
  maxHeaderLength?: number;
}

/** A raw `setsockopt(level, name, value)` (`socketOptions`, Linux numbers or names). */
export interface RawSocketOption {
  /** A number, or 'SOL_SOCKET', 'IPPROTO_IP', 'IPPROTO_TCP', 'IPPROTO_IPV6' (or SOL_ aliases). */
  level: number | string;
  /** A number, or a name of that level such as 'SO_PRIORITY' or 'TCP_NOTSENT_LOWAT'. */
  name: number | string;
  /** A C int (true: 1, false: 0), or the value's bytes. */
  value: number | boolean | NodeJS.ArrayBufferView;
}

/**
 * Options of a TCP listening socket, set in Rust before bind() and listen()
 * (Linux only; docs/socket-options.md). The per-connection ones are
 * inherited by every accepted connection from the listener.
 */
export interface SocketOptions {
  /** TCP_DEFER_ACCEPT: seconds to wait for a connection's first data before accepting it. */
  deferAccept?: number;
  /** TCP_FASTOPEN: the queue length of pending Fast Open requests. */
  fastOpen?: number;
  /** IP_FREEBIND / IPV6_FREEBIND: bind an address this host does not (yet) have. */
  freebind?: boolean;
  /** IP_TRANSPARENT / IPV6_TRANSPARENT (needs CAP_NET_ADMIN). */
  transparent?: boolean;
  /** SO_BINDTODEVICE: an interface name such as 'eth0'. */
  bindToDevice?: string;
  /** SO_RCVBUF, in bytes (the kernel doubles it). */
  receiveBufferSize?: number;
  /** SO_SNDBUF, in bytes (the kernel doubles it). */
  sendBufferSize?: number;
  /** TCP_KEEPINTVL, in milliseconds (whole seconds are used, 1000 to 32767000). */
  keepAliveInterval?: number;
  /** TCP_KEEPCNT: unanswered probes before the connection is dropped (1 to 127). */
  keepAliveCount?: number;
  /** TCP_USER_TIMEOUT, in milliseconds (0: the kernel's default). */
  userTimeout?: number;
  /** TCP_CONGESTION: a congestion control the kernel has, such as 'bbr' or 'cubic'. */
  congestion?: string;
  /** Any other option, set after the named ones. */
  socketOptions?: readonly RawSocketOption[];
}

/** `acceptRatePerAddress`: a token bucket per client address. */
export interface AcceptRateOptions {
  /** New connections per second an address may open on average (> 0). */
  rate: number;
  /** How many it may open at once after being quiet (integer ≥ 1; default `Math.ceil(rate)`). */
  burst?: number;
}

/**
 * Per-client limits, decided in Rust before JavaScript sees a connection
 * (docs/overload.md). The client is the PROXY header's source with
 * `proxyProtocol`, else the peer; addresses are grouped by prefix.
 */
export interface PeerLimitOptions {
  /** At most this many open connections per client address (integer ≥ 1); the rest get `ERR_PEER_LIMIT`. */
  maxConnectionsPerAddress?: number;
  /** New connections per second per client address; the rest get `ERR_PEER_RATE`. */
  acceptRatePerAddress?: AcceptRateOptions;
  /** IPv4 addresses count together by this prefix length (1 to 32; default 32). */
  perAddressIPv4Prefix?: number;
  /** IPv6 addresses count together by this prefix length (1 to 128; default 64). */
  perAddressIPv6Prefix?: number;
  /**
   * Load-aware accepting: stop taking connections from the kernel while the
   * event loop has left a batch untaken for this many milliseconds (integer ≥ 1).
   */
  pauseAcceptAfter?: number;
  /**
   * While paused, reset the connections the kernel's accept queue holds
   * beyond this many (integer ≥ 0), so clients retry elsewhere. Alone, it
   * pauses after 25 ms (`pauseAcceptAfter`'s measured default).
   */
  shedAbove?: number;
}

/** The message of the `diagnostics_channel` channels `rust-net:server:pause`, `:resume` and `:overflow`. */
export interface LoadEventMessage {
  server: Server;
  /** The kernel's accept queue when it happened, or null where it cannot be read. */
  queue: { length: number; limit: number } | null;
  /** `resume`: connections shed during the pause. */
  shed: number;
  /** `resume`: how long the pause lasted, in milliseconds. */
  pausedMs: number;
  /**
   * Handshakes the kernel dropped at the socket because its queue was full:
   * `overflow`, since the last report; `resume`, during the pause (Linux; 0 elsewhere).
   */
  drops: number;
}

/** createServer() options: node:net's, and rust-net's own. */
export interface ServerOpts extends net.ServerOpts, SocketOptions, PeerLimitOptions {
  acceptPlacement?: AcceptPlacement;
  proxyProtocol?: ProxyProtocolOptions;
  /** Node 22.13's option, on every supported Node. */
  blockList?: net.BlockList;
  /**
   * Share the address this server listens on with the servers of other
   * threads of this process (worker_threads) that listen on it with the
   * option too; rust-net hands each connection to the one whose event loop
   * is least busy. Default false: a second bind is `EADDRINUSE`, as in
   * node:net. See docs/threads.md.
   */
  shareAcrossThreads?: boolean | undefined;
  /**
   * Hand-over on restarts: the path of a Unix control socket through which
   * this server's listening socket passes to the next process listening on
   * the same address, and from the previous one (docs/handover.md). `false`
   * keeps the server out of `RUST_NET_HANDOVER`.
   */
  handover?: string | false | undefined;
}

/** The `'handover'` event's argument: the process that now listens on the socket. */
export interface HandoverInfo {
  pid: number;
}

declare module 'net' {
  interface Server {
    /**
     * rust-net: every address the server listens on, `address()` first,
     * then the rest of `listen({ addresses })`; [] when not listening. On
     * rust-net's servers, and on every server under rust-net/register
     * (optional because node:net's own servers lack it). See docs/addresses.md.
     */
    addresses?(): AddressInfo[];
  }

  interface ListenOptions extends SocketOptions, PeerLimitOptions {
    /** rust-net: read a PROXY protocol header (also through http/https/express under register). */
    proxyProtocol?: ProxyProtocolOptions;
    /** Node 22.12's option; rust-net gives it to Node 18 and 20 too. */
    reusePort?: boolean;
    /** rust-net: as `ServerOpts.shareAcrossThreads`, for this `listen()`. */
    shareAcrossThreads?: boolean | undefined;
    /**
     * rust-net: listen on a socket systemd passed (socket activation): true
     * for the first, or its FileDescriptorName. See docs/systemd.md.
     */
    systemd?: boolean | string;
    /**
     * rust-net: IP addresses to listen on, all on `port`, as one server
     * (instead of `host`). See docs/addresses.md.
     */
    addresses?: readonly string[];
    /** rust-net: as `ServerOpts.handover`, for this `listen()`. */
    handover?: string | false | undefined;
  }
}

/** An address as Node reports one. */
export interface Endpoint {
  address: string;
  port: number;
  family: 'IPv4' | 'IPv6';
}

/** What a connection's PROXY protocol header said. */
export interface ProxyHeader {
  version: 1 | 2;
  command: 'PROXY' | 'LOCAL';
  /** The client as the proxy saw it; absent for LOCAL, UNKNOWN, UNSPEC and UNIX headers. */
  source?: Endpoint;
  destination?: Endpoint;
  /** The real peer: the proxy. */
  proxy?: Endpoint;
  alpn?: string;
  authority?: string;
  uniqueId?: Buffer;
  netns?: string;
  ssl?: {
    clientSsl: boolean;
    clientCertConn: boolean;
    clientCertSess: boolean;
    verified: boolean;
    version?: string;
    cn?: string;
    cipher?: string;
    sigAlg?: string;
    keyAlg?: string;
  };
  crc32c?: number;
  awsVpcEndpointId?: string;
  azurePrivateLinkId?: number;
  gcpPscConnectionId?: string;
  tlvs: { type: number; value: Buffer }[];
}

/** A connection refused in Rust (`'connectionRejected'` event). */
export interface ConnectionRejection {
  code: 'ERR_PEER_BLOCKED' | 'ERR_PROXY_HEADER_MISSING' | 'ERR_PROXY_HEADER_INVALID' |
    'ERR_PROXY_HEADER_TIMEOUT' | 'ERR_PROXY_HEADER_TOO_LARGE' | 'ERR_PROXY_PEER_UNTRUSTED' |
    'ERR_PEER_LIMIT' | 'ERR_PEER_RATE';
  detail?: string;
  remoteAddress?: string;
  remotePort?: number;
  remoteFamily?: string;
}

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
  new (options?: ServerOpts, connectionListener?: (socket: net.Socket) => void): Server;
  /** Like node:net, `Server()` without `new` also constructs a server. */
  (connectionListener?: (socket: net.Socket) => void): Server;
  (options?: ServerOpts, connectionListener?: (socket: net.Socket) => void): Server;
  readonly prototype: Server;
}

export declare const Server: ServerConstructor;

/** Same signature and behaviour as `net.createServer()`. */
export declare function createServer(connectionListener?: (socket: net.Socket) => void): Server;
export declare function createServer(
  options?: ServerOpts,
  connectionListener?: (socket: net.Socket) => void,
): Server;

/**
 * True while `server` listens on a socket that rust-net's accept loop owns
 * (a rust-net server, or any net-based server under `rust-net/register`);
 * false before `listen()`, after `close()`, for node:net's own servers, and
 * for anything that is not a server.
 */
export declare function isRustServer(server: unknown): boolean;

/** One server of a group sharing a socket across threads. */
export interface ThreadShareMember {
  /** `threadId` of its thread (0: the main thread). */
  threadId: number;
  /** True for the server `threadShareStats()` was asked about. */
  own: boolean;
  /** Connections handed to it, re-routed ones included. */
  dispatched: number;
  /** Of those, how many its event loop has taken. */
  taken: number;
  /** Handed to it, not yet taken: how far behind its event loop is. */
  waiting: number;
  /** Of `dispatched`, how many came from a member that left. */
  rerouted: number;
  /** Its open connections, as its thread last published them. */
  connections: number;
  /** The count at which Node drops its connections, or null: no limit. */
  maxConnections: number | null;
}

/** How a group of servers sharing a socket across threads shares its connections. */
export interface ThreadShareStats {
  /** The servers listening in the group now, in the order they joined. */
  members: ThreadShareMember[];
  /** Connections moved to other members from members that left. */
  rerouted: number;
  /** Members that have left the group. */
  departed: number;
  /** Connections accepted that no member could take yet. */
  held: number;
}

/**
 * The counts of the group `server` listens in with `shareAcrossThreads`;
 * null for any other server (or before `listen()`, or after `close()`).
 */
export declare function threadShareStats(server: unknown): ThreadShareStats | null;

/**
 * True when rust-net's native listener loaded. When it did not (no binary for
 * this platform, an install without scripts), rust-net serves through
 * node:net and warns once (RUST_NET_NATIVE_MISSING);
 * RUST_NET_REQUIRE_NATIVE=1 makes that an error.
 */
export declare const native: boolean;

/** What `socket`'s PROXY protocol header said, or null (no header, or not a proxyProtocol server). */
export declare function proxyHeader(socket: unknown): ProxyHeader | null;

/**
 * What admission (blockList, proxyProtocol) counted for `server`: `proxied`,
 * `direct`, and refusals by code; null when the server has neither option.
 */
export declare function admissionStats(server: unknown): Record<string, number> | null;

/** What `serverStats()` reports of a server's listening socket (docs/overload.md). */
export interface ServerStats {
  /**
   * The kernel's accept queue (TCP on Linux; null elsewhere): connections waiting, how many fit,
   * and handshakes the kernel dropped at the socket since listen() — mostly for a full queue,
   * each client retry again (null where the kernel cannot say).
   */
  acceptQueue: { length: number; limit: number; drops: number | null } | null;
  /** Connections taken from the kernel since listen(), refused ones included. */
  accepted: number;
  /** Connections refused in Rust, by code (`ERR_PEER_LIMIT`, `ERR_PEER_BLOCKED`, ...). */
  rejected: Record<string, number>;
  /** accept() failures (out of descriptors, and any other). */
  acceptErrors: number;
  /** Of those, for lack of descriptors (EMFILE, ENFILE). */
  emfile: number;
  /** Accepting is paused now because the event loop is behind (`pauseAcceptAfter`). */
  paused: boolean;
  /** How many times accepting paused for load. */
  pauses: number;
  /** How long it has been paused in all, in milliseconds. */
  pausedMs: number;
  /** Connections reset while paused (`shedAbove`). */
  shed: number;
}

/**
 * What `server`'s listening socket has seen since it started listening;
 * null before `listen()`, after `close()`, for node:net's own servers and
 * for servers sharing a socket across threads (see `threadShareStats()`).
 */
export declare function serverStats(server: unknown): ServerStats | null;
