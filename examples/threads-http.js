'use strict';

// An http server on THREADS worker threads sharing PORT through rust-net's
// shareAcrossThreads: rust-net accepts once for all of them and hands each
// connection to the thread whose event loop is least busy.
//
//   THREADS  worker threads (default: the available parallelism)
//   PORT     port to share (default 8000)
//   WORK_US  microseconds of CPU spent per request, standing for a real
//            handler (default 0)
//
// Each response body ends with the serving thread's threadId:
//   curl -s localhost:8000/    →  hello from thread 2
// SIGINT/SIGTERM stop the workers; each closes its server, and connections
// waiting for one go to the others.

// Every server of the process listens in Rust (in an application:
// `node -r rust-net/register app.js`, or require('rust-net/register')).
require('../register');

const http = require('http');
const os = require('os');
const { Worker, isMainThread, parentPort, threadId, workerData } = require('worker_threads');

function env(name, fallback) {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a whole number, not ${process.env[name]}`);
  return value;
}

// Busy CPU for `us` microseconds, as a handler that computes would be.
function spin(us) {
  if (us === 0) return;
  const end = process.hrtime.bigint() + BigInt(us) * 1000n;
  while (process.hrtime.bigint() < end);
}

if (isMainThread) {
  const threads = env('THREADS', os.availableParallelism?.() ?? os.cpus().length) || 1;
  const port = env('PORT', 8000);
  const workUs = env('WORK_US', 0);
  const workers = [];
  let up = 0;
  for (let i = 0; i < threads; i++) {
    const worker = new Worker(__filename, { workerData: { port, workUs } });
    worker.on('message', (m) => {
      if (m === 'listening' && ++up === threads) {
        console.log(`${threads} threads share port ${port} (WORK_US=${workUs})`);
      }
    });
    worker.on('error', (err) => {
      console.error(err);
      process.exitCode = 1;
    });
    workers.push(worker);
  }
  const stop = () => {
    for (const worker of workers) worker.postMessage('stop');
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
} else {
  const { port, workUs } = workerData;
  const server = http.createServer((req, res) => {
    spin(workUs);
    res.end(`hello from thread ${threadId}\n`);
  });
  server.listen({ port, shareAcrossThreads: true }, () => parentPort.postMessage('listening'));
  parentPort.on('message', (m) => {
    if (m !== 'stop') return;
    server.close();
    server.closeAllConnections?.();
    parentPort.close();
  });
}
