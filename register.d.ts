/// <reference types="node" />
// rust-net/register: loading it (`node -r rust-net/register`, `node --import
// rust-net/register`, or `import 'rust-net/register'`) puts rust-net's Server
// and createServer in place of node:net's for the whole process. The types of
// node:net stay as they are: rust-net's Server is a net.Server. The module
// also exports rust-net's own Server and createServer.

export { Server, createServer } from './index.js';
export type { ServerConstructor } from './index.js';
