'use strict';

// shareAcrossThreads, JavaScript's side (the group, its accept loop and the
// dispatch are in src/share/; the option is read in options.js): publishing
// each shared server's load to the dispatcher, and threadShareStats().

const { LOAD_CONNECTIONS, LOAD_MAX } = require('./listener');
const { shareLoadOf, shareStatsOf } = require('./handle');
const { watchProperty } = require('./util');

const kLoad = Symbol('rust-net.shareLoad');

// Node 22 and later drop connections at maxConnections 0 as well; Node 18
// and 20 only apply a truthy maxConnections.
const zeroIsALimit = Number(process.versions.node.split('.')[0]) >= 22;

// The connection count at which the running Node's onconnection drops a
// connection (`_connections >= maxConnections`), or -1 when it never does.
function dropsAt(max) {
  if (max == null || (!zeroIsALimit && !max)) return -1;
  const n = Number(max);
  if (Number.isNaN(n) || n === Infinity) return -1;
  if (n <= 0) return 0;
  return Math.min(Math.ceil(n), 0x7fffffff);
}

// Keeps the dispatcher informed of `server`'s load while its handle is
// shared: `_connections` and `maxConnections` become accessors that also
// write the handle's load cells, so every change — Node's own ++ and -- and
// the user's assignments — is seen at once, at the cost of a typed-array
// store.
function trackLoad(server) {
  const load = shareLoadOf(server._handle);
  if (load === null) return;
  if (server[kLoad] === undefined) {
    watchProperty(server, '_connections', function(value) { this[kLoad][LOAD_CONNECTIONS] = value; });
    watchProperty(server, 'maxConnections', function(value) { this[kLoad][LOAD_MAX] = dropsAt(value); });
  }
  server[kLoad] = load;
  load[LOAD_CONNECTIONS] = server._connections;
  load[LOAD_MAX] = dropsAt(server.maxConnections);
}

// The counts of the group `server` listens in, or null when it does not
// share its socket across threads (or is not listening).
function threadShareStats(server) {
  const stats = shareStatsOf(server?._handle);
  if (stats == null) return null;
  return {
    members: stats.members.map((m) => ({
      threadId: m.threadId,
      own: m.own,
      dispatched: m.dispatched,
      taken: m.taken,
      waiting: m.waiting,
      rerouted: m.rerouted,
      connections: m.connections,
      maxConnections: m.maxConnections === -1 ? null : m.maxConnections,
    })),
    rerouted: stats.rerouted,
    departed: stats.departed,
    held: stats.held,
  };
}

module.exports = { threadShareStats, trackLoad };
