'use strict';

// pm2 (fork mode) for examples/handover/server.js (docs/handover.md). pm2's
// reload stops a fork-mode process before it starts the new one, so two
// entries alternate instead: starting the stopped one is the deploy.
//
//   sh examples/handover/pm2-deploy.sh     # first start (app-blue), then each deploy
//
// which runs, for the entry that is stopped:
//
//   pm2 start examples/handover/ecosystem.config.js --only app-blue    # first start
//   pm2 start examples/handover/ecosystem.config.js --only app-green   # deploy: green takes over
//   pm2 start examples/handover/ecosystem.config.js --only app-blue    # next deploy
//
// Starting the entry that serves is a pm2 restart (stop, then start): it
// refuses connections meanwhile. The process that handed over exits with
// code 0, which `stop_exit_codes` keeps pm2 from restarting (it would take
// the socket back); a crash is still restarted. PORT and RUST_NET_HANDOVER
// are taken from the environment of `pm2 start` when set there.

const app = (name) => ({
  name,
  script: `${__dirname}/server.js`,
  exec_mode: 'fork',
  autorestart: true,
  stop_exit_codes: [0],
  // The old process exits by itself once its connections end.
  kill_timeout: 30000,
  env: {
    RUST_NET_HANDOVER: process.env.RUST_NET_HANDOVER ?? '/tmp/rust-net-example-pm2.handover',
    PORT: process.env.PORT ?? '8000',
  },
});

module.exports = { apps: [app('app-blue'), app('app-green')] };
