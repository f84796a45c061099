'use strict';

// Load-aware accepting, JavaScript's side (src/acceptor/overload.rs decides):
// the changes Rust recorded — accepting paused because the event loop left
// a batch untaken, resumed, the kernel's accept queue full — published on
// diagnostics_channel when the event loop next takes a batch, which is the
// first moment it can hear of them.

const diagnosticsChannel = require('diagnostics_channel');

const channels = {
  pause: diagnosticsChannel.channel('rust-net:server:pause'),
  resume: diagnosticsChannel.channel('rust-net:server:resume'),
  overflow: diagnosticsChannel.channel('rust-net:server:overflow'),
};

class LoadEvents {
  constructor(server, listener) {
    this.server = server;
    this.listener = listener;
  }

  // Publishes what changed since the last batch; asks Rust only when some
  // channel has subscribers (the events wait there, bounded, otherwise).
  publish() {
    if (!channels.pause.hasSubscribers && !channels.resume.hasSubscribers && !channels.overflow.hasSubscribers) {
      return;
    }
    for (const event of this.listener.takeLoadEvents()) {
      channels[event.kind]?.publish({
        server: this.server,
        queue: event.queueLimit == null ? null : { length: event.queueLength, limit: event.queueLimit },
        shed: event.shed,
        pausedMs: event.pausedMs,
      });
    }
  }
}

module.exports = { LoadEvents };
