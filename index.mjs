// rust-net for ES modules: every named export of node:net on the running
// Node, with Server and createServer replaced by rust-net's (explicit
// exports win over `export *`), plus rust-net's own isRustServer, native,
// proxyHeader, admissionStats, serverStats and threadShareStats.
// The default export is the same object as require('rust-net').

import rustNet from './index.js';

export * from 'node:net';
export default rustNet;
export const {
  Server, admissionStats, createServer, isRustServer, native, proxyHeader, serverStats, threadShareStats,
} = rustNet;
