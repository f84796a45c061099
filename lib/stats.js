'use strict';

// serverStats(server): what a server's listening socket has seen, for an
// operator to poll (docs/overload.md). Cheap enough to call every second:
// one native call, which reads a few counters and one getsockopt.

const { statsOf } = require('./handle');

// The figures of a server listening in Rust with a socket of its own, or
// null (not listening, node:net's own server, or a member of a group
// sharing a socket across threads: threadShareStats() has its counts).
function serverStats(server) {
  const info = statsOf(server?._handle);
  if (info == null) return null;
  return {
    acceptQueue: info.queueLimit == null ? null :
      { length: info.queueLength, limit: info.queueLimit, drops: info.queueDrops ?? null },
    accepted: info.accepted,
    rejected: { ...info.rejected },
    acceptErrors: info.acceptErrors,
    emfile: info.emfile,
    paused: info.paused,
    pauses: info.pauses,
    pausedMs: info.pausedMs,
    shed: info.shed,
  };
}

module.exports = { serverStats };
