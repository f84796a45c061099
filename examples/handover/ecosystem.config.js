'use strict';

// pm2 (fork mode) for examples/handover/server.js (docs/handover.md). pm2's
// reload stops a fork-mode process before it starts the new one, so two
// entries alternate instead: starting the stopped one is the deploy.
//
//   pm2 start examples/handover/ecosystem.config.js --only app-blue    # first start
//   pm2 start examples/handover/ecosystem.config.js --only app-green   # deploy: green takes over
//   pm2 start examples/handover/ecosystem.config.js --only app-blue    # next deploy
//
// The process that handed over exits with code 0, which `stop_exit_codes`
// keeps pm2 from restarting (it would take the socket back); a crash is
// still restarted.

const app = (name) => ({
  name,
  script: `${__dirname}/server.js`,
  exec_mode: 'fork',
  autorestart: true,
  stop_exit_codes: [0],
  // The old process exits by itself once its connections end.
  kill_timeout: 30000,
  env: {
    RUST_NET_HANDOVER: '/tmp/rust-net-example-pm2.handover',
    PORT: '8000',
  },
});

module.exports = { apps: [app('app-blue'), app('app-green')] };
