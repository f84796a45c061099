/// <reference types="node" />
// rust-net/register: loading it (`node -r rust-net/register`, `node --import
// rust-net/register`, or `import 'rust-net/register'`) makes every net-based
// server of the process that listens afterwards listen in Rust, and puts
// rust-net's Server and createServer in place of node:net's. The types of
// node:net stay as they are: rust-net's Server is a net.Server. The module
// also exports rust-net's own Server and createServer.

export { Server, createServer } from './index.js';
export type { ServerConstructor } from './index.js';
