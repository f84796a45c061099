'use strict';

// Load-aware accepting and the accept queue's overflows, JavaScript's side
// (src/acceptor/overload.rs decides): the changes Rust recorded — accepting
// paused because the event loop left a batch untaken, resumed — and the
// handshakes the kernel dropped at the socket because its accept queue was
// full, published on diagnostics_channel when the event loop next takes a
// batch, which is the first moment it can hear of them.

const diagnosticsChannel = require('diagnostics_channel');

const channels = {
  pause: diagnosticsChannel.channel('rust-net:server:pause'),
  resume: diagnosticsChannel.channel('rust-net:server:resume'),
  overflow: diagnosticsChannel.channel('rust-net:server:overflow'),
};

// The kernel's drop count is read at most this often (milliseconds) per
// server: one getsockopt, and one event at most, per interval.
const OVERFLOW_CHECK_MS = 100;

function message(server, event) {
  return {
    server,
    queue: event.queueLimit == null ? null : { length: event.queueLength, limit: event.queueLimit },
    shed: event.shed,
    pausedMs: event.pausedMs,
    drops: event.drops,
  };
}

class LoadEvents {
  constructor(server, listener, loadAware) {
    this.server = server;
    this.listener = listener;
    this.loadAware = loadAware;
    this.overflowCheckedAt = 0;
  }

  // Publishes what changed since the last batch; asks Rust only when some
  // channel has subscribers (the events wait there, bounded, otherwise).
  publish() {
    if (this.loadAware && (channels.pause.hasSubscribers || channels.resume.hasSubscribers ||
                           channels.overflow.hasSubscribers)) {
      for (const event of this.listener.takeLoadEvents()) {
        channels[event.kind]?.publish(message(this.server, event));
      }
    }
    if (channels.overflow.hasSubscribers) {
      const now = performance.now();
      if (now - this.overflowCheckedAt < OVERFLOW_CHECK_MS) return;
      this.overflowCheckedAt = now;
      const event = this.listener.overflow();
      if (event != null) channels.overflow.publish(message(this.server, event));
    }
  }
}

module.exports = { LoadEvents };
