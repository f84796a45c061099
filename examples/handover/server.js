'use strict';

// An http server that is replaced without losing a connection
// (docs/handover.md). Run it with a control-socket path:
//
//   RUST_NET_HANDOVER=/tmp/app.handover PORT=8000 node examples/handover/server.js
//
// and run the same command again while it serves: the new process takes
// over the port, the old one finishes its requests and exits. In an
// installed app, `node -r rust-net/register server.js` replaces the require
// below, and nothing else in the program mentions rust-net.
// PIDFILE=<file>: the pid of the process serving, for systemd's PIDFile=.

require('../../register');
const fs = require('fs');
const http = require('http');

const port = Number(process.env.PORT ?? 8000);
const pidFile = process.env.PIDFILE;

function writePid(pid) {
  if (!pidFile) return;
  // Renamed into place, so systemd never reads half a file.
  fs.writeFileSync(`${pidFile}.tmp`, `${pid}\n`);
  fs.renameSync(`${pidFile}.tmp`, pidFile);
}

const server = http.createServer((req, res) => res.end(`hello from process ${process.pid}\n`));

server.on('handover', ({ pid }) => {
  // Before this process exits: systemd reads the file again when it does.
  writePid(pid);
  console.log(`${process.pid}: process ${pid} listens on port ${port} now; finishing my connections`);
});

server.on('error', (err) => {
  console.error(`${process.pid}: ${err.code}: ${err.message}`);
  process.exitCode = 1;
});

server.listen(port, () => {
  // This process serves now (its predecessor writes the same pid on
  // 'handover', whichever comes first).
  writePid(process.pid);
  console.log(`${process.pid}: listening on port ${port}`);
});

process.on('SIGTERM', () => server.close());
process.on('SIGINT', () => server.close());
