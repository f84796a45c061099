'use strict';

// System calls per connection of the per-connection socket options (issue
// 32, docs/socket-options.md), counted by strace -f -c on the server's
// process:
//
//   node bench/sockopts.js [--node PATH] [--connections N]
//
// Each design serves N and then 2N connections (one at a time from this
// process, over loopback; each server writes one byte and ends); the
// difference between the two runs, divided by N, is what one connection
// costs, without the start-up and the listener's own calls. Designs:
//
//   node:net                      no options
//   node:net noDelay+keepAlive    Node's own options (set per connection)
//   rust-net                      no options
//   rust-net noDelay+keepAlive    the same options
//   rust-net every option         + keepAliveInterval, keepAliveCount,
//                                 userTimeout, congestion
//
// Prints a Markdown table (setsockopt and all system calls per connection).

const { execFileSync, spawn } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');

const ROOT = path.join(__dirname, '..');
const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const NODE = flag('--node', process.execPath);
const N = Number(flag('--connections', 300));
const congestion = fs.readFileSync('/proc/sys/net/ipv4/tcp_congestion_control', 'utf8').trim();

const nodeOptions = { noDelay: true, keepAlive: true, keepAliveInitialDelay: 10000 };
const DESIGNS = [
  ['node:net', 'net', {}],
  ['node:net noDelay+keepAlive', 'net', nodeOptions],
  ['rust-net', ROOT, {}],
  ['rust-net noDelay+keepAlive', ROOT, nodeOptions],
  ['rust-net every option', ROOT, {
    ...nodeOptions, keepAliveInterval: 5000, keepAliveCount: 4, userTimeout: 30000, congestion,
  }],
];

const SERVER = `
  const net = require(process.argv[1]);
  const total = Number(process.argv[3]);
  let served = 0;
  const server = net.createServer(JSON.parse(process.argv[2]), (socket) => {
    socket.end('x');
    socket.on('close', () => { if (++served === total) server.close(); });
  });
  server.listen(0, '127.0.0.1', () => console.log(server.address().port));
`;

// Runs one design for `count` connections; resolves with strace's counts.
async function run(module, options, count) {
  const out = path.join(os.tmpdir(), `rust-net-sockopts-${process.pid}.txt`);
  const child = spawn('strace', ['-f', '-c', '-o', out, NODE, '-e', SERVER, module, JSON.stringify(options),
    String(count)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [port] = await new Promise((resolve) => child.stdout.once('data', (d) => resolve([Number(String(d))])));
  for (let i = 0; i < count; i++) {
    await new Promise((resolve, reject) => {
      const client = net.connect(port, '127.0.0.1');
      client.on('error', reject);
      client.resume();
      client.on('close', resolve);
    });
  }
  await new Promise((resolve) => child.on('exit', resolve));
  const counts = {};
  for (const line of fs.readFileSync(out, 'utf8').split('\n')) {
    const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$/.exec(line);
    if (m) counts[m[2]] = Number(m[1]);
  }
  fs.rmSync(out, { force: true });
  return counts;
}

async function main() {
  execFileSync('strace', ['-V']);
  const version = execFileSync(NODE, ['--version'], { encoding: 'utf8' }).trim();
  console.log(`Node ${version}, ${N} and ${2 * N} connections, one at a time; per connection:\n`);
  console.log('| design | setsockopt | all system calls |');
  console.log('| --- | ---: | ---: |');
  for (const [name, module, options] of DESIGNS) {
    const small = await run(module, options, N);
    const large = await run(module, options, 2 * N);
    const per = (key) => ((large[key] ?? 0) - (small[key] ?? 0)) / N;
    console.log(`| ${name} | ${per('setsockopt').toFixed(2)} | ${per('total').toFixed(2)} |`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
