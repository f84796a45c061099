'use strict';

// The server side of the stress runs, in its own process so its descriptors
// can be counted alone: a rust-net server that answers each byte with one
// byte and reports /proc/self/fd counts over IPC.

const fs = require('fs');
const { createServer } = require('..');

const fds = () => fs.readdirSync('/proc/self/fd').length;
const sockets = new Set();
let accepted = 0;

const server = createServer((socket) => {
  accepted++;
  sockets.add(socket);
  socket.on('error', () => {});
  socket.on('close', () => sockets.delete(socket));
  socket.on('data', () => socket.write('y'));
});

process.on('message', (msg) => {
  if (msg === 'count') {
    process.send({ fds: fds(), open: sockets.size, accepted });
  } else if (msg === 'close') {
    server.close(() => process.send({ closed: true, fds: fds() }));
  }
});

server.listen(0, '127.0.0.1', () => {
  process.send({ port: server.address().port, fds: fds() });
});
