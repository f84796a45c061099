'use strict';

// Descriptor accounting through /proc/self/fd.

const fs = require('fs');

function openFds() {
  return fs.readdirSync('/proc/self/fd').length;
}

// Waits (bounded) for the count to come back to `baseline`: sockets close
// asynchronously in Node, on the close phase of the event loop.
async function settleFds(baseline, timeoutMs = 2000) {
  const deadline = Date.now() + timeoutMs;
  let now = openFds();
  while (now > baseline && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    now = openFds();
  }
  return now;
}

module.exports = { openFds, settleFds };
