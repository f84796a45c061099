'use strict';

// The server of bench/handover.js: a net server answering each connection
// with this process's pid and closing it (short connections), and an http
// server answering the same (keep-alive). Prints "listening <pid>" once both
// listen. How it is replaced is bench/handover.js's: HANDOVER_MODE
//   rust-net   rust-net/register with RUST_NET_HANDOVER (set by the driver)
//   node       node:net; SIGTERM closes both servers
//   reuseport  node:net with listen({ reusePort: true }); SIGTERM closes
//
//   node handover-server.js <net port> <http port>

if (process.env.HANDOVER_MODE === 'rust-net') require('../register');
const http = require('http');
const net = require('net');

const [netPort, httpPort] = process.argv.slice(2).map(Number);
const reusePort = process.env.HANDOVER_MODE === 'reuseport';
const pid = String(process.pid);

const shortServer = net.createServer((socket) => {
  socket.on('error', () => {});
  socket.end(pid);
});
const httpServer = http.createServer((req, res) => res.end(pid));
const servers = [shortServer, httpServer];

let listening = 0;
for (const [server, port] of [[shortServer, netPort], [httpServer, httpPort]]) {
  server.on('error', (err) => {
    console.error(`handover-server ${pid}: ${err.code} ${err.message}`);
    process.exit(1);
  });
  server.listen({ port, host: '127.0.0.1', reusePort }, () => {
    if (++listening === servers.length) console.log(`listening ${pid}`);
  });
}

process.on('SIGTERM', () => {
  for (const server of servers) {
    server.close();
    server.closeIdleConnections?.();
  }
});
