'use strict';

// `npm start`: an echo server on rust-net. PORT chooses the port (default 8000).

const { createServer } = require('..');

const port = Number(process.env.PORT ?? 8000);
const server = createServer((socket) => {
  socket.pipe(socket);
  socket.on('error', () => socket.destroy());
});

server.on('error', (err) => {
  console.error(`echo server: ${err.message}`);
  process.exitCode = 1;
});

server.listen(port, () => {
  const { address, port: actual } = server.address();
  console.log(`rust-net echo server listening on ${address}:${actual} (try: nc localhost ${actual})`);
});

process.on('SIGINT', () => server.close());
process.on('SIGTERM', () => server.close());
