'use strict';

// proxyProtocol with real senders in front: HAProxy (send-proxy,
// send-proxy-v2, send-proxy-v2-ssl, LOCAL health checks), nginx's stream
// proxy_protocol, and curl --haproxy-protocol, each in front of an http, an
// https and an express app that turn it on through listen() under
// `node -r rust-net/register`. Clients connect from 127.0.0.2, the proxies
// from 127.0.0.1: the app must see 127.0.0.2. Skips where a sender is not
// installed (.ci/run installs them).

const assert = require('assert');
const { spawn, spawnSync } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const { test } = require('./helpers/oracle');

const root = path.join(__dirname, '..');
const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const haproxy = has('haproxy') || fs.existsSync('/usr/sbin/haproxy');
const nginxStream = (has('nginx') || fs.existsSync('/usr/sbin/nginx')) &&
  fs.existsSync('/usr/lib/nginx/modules/ngx_stream_module.so');
const curl = has('curl');
const openssl = has('openssl');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rust-net-senders-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

function tlsFiles() {
  const key = path.join(tmp, 'key.pem');
  const cert = path.join(tmp, 'cert.pem');
  if (!fs.existsSync(cert)) {
    const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert,
                                    '-days', '1', '-subj', '/CN=localhost'], { encoding: 'utf8' });
    assert.strictEqual(r.status, 0, r.stderr);
    fs.writeFileSync(path.join(tmp, 'both.pem'), fs.readFileSync(cert) + fs.readFileSync(key));
  }
  return { key, cert, both: path.join(tmp, 'both.pem') };
}

const children = [];
process.on('exit', () => { for (const c of children) c.kill('SIGKILL'); });

// Starts the app (APP_KIND http|https|express); resolves with its port and
// a reader of what it printed on stderr.
async function startApp(kind) {
  const env = { ...process.env, APP_KIND: kind };
  if (kind === 'https') Object.assign(env, { TLS_KEY: tlsFiles().key, TLS_CERT: tlsFiles().cert });
  const child = spawn(process.execPath, ['-r', path.join(root, 'register.js'), path.join(__dirname, 'fixtures', 'proxy-app.js')],
                      { env, stdio: ['pipe', 'pipe', 'pipe'] });
  children.push(child);
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const port = await new Promise((resolve, reject) => {
    child.stdout.once('data', (d) => resolve(Number(String(d).trim())));
    child.once('exit', (code) => reject(new Error(`app exited ${code}: ${stderr}`)));
  });
  return { port, stderr: () => stderr, stop: () => child.stdin.end() };
}

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function waitForPort(port) {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => { c.destroy(); resolve(true); });
      c.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on ${port}`);
}

function runCurl(args) {
  const r = spawnSync('curl', ['-sS', '--max-time', '10', ...args], { encoding: 'utf8' });
  assert.strictEqual(r.status, 0, `curl ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

async function startHaproxy(lines) {
  const cfg = path.join(tmp, `haproxy-${Date.now()}.cfg`);
  fs.writeFileSync(cfg, [
    'global', '  maxconn 200',
    'defaults', '  mode tcp', '  timeout connect 2s', '  timeout client 10s', '  timeout server 10s',
    ...lines, '',
  ].join('\n'));
  const child = spawn('haproxy', ['-db', '-f', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(child);
  return { stop: () => child.kill('SIGTERM') };
}

test('HAProxy send-proxy (v1) in front of an http app: the app sees the client', { skip: !(haproxy && curl) && 'haproxy or curl is not installed' }, async () => {
  const app = await startApp('http');
  const front = await freePort();
  const hap = await startHaproxy([`listen l1`, `  bind 127.0.0.1:${front}`, `  server s1 127.0.0.1:${app.port} send-proxy`]);
  await waitForPort(front);
  const r = runCurl(['--interface', '127.0.0.2', `http://127.0.0.1:${front}/v1`]);
  hap.stop();
  app.stop();
  assert.deepStrictEqual([r.remoteAddress, r.version, r.command, r.body], ['127.0.0.2', 1, 'PROXY', '/v1']);
});

test('HAProxy send-proxy-v2 in front of an https app (TLS passed through): the TLS socket sees the client', { skip: !(haproxy && curl && openssl) && 'haproxy, curl or openssl is not installed' }, async () => {
  const app = await startApp('https');
  const front = await freePort();
  const hap = await startHaproxy([`listen l2`, `  bind 127.0.0.1:${front}`, `  server s2 127.0.0.1:${app.port} send-proxy-v2`]);
  await waitForPort(front);
  const r = runCurl(['-k', '--interface', '127.0.0.2', `https://127.0.0.1:${front}/tls`]);
  hap.stop();
  app.stop();
  assert.deepStrictEqual([r.remoteAddress, r.encrypted, r.version], ['127.0.0.2', true, 2]);
});

test('HAProxy send-proxy-v2 in front of an express app: req.ip is the client', { skip: !(haproxy && curl) && 'haproxy or curl is not installed' }, async () => {
  const app = await startApp('express');
  const front = await freePort();
  const hap = await startHaproxy([`listen l3`, `  bind 127.0.0.1:${front}`, `  server s3 127.0.0.1:${app.port} send-proxy-v2`]);
  await waitForPort(front);
  const r = runCurl(['--interface', '127.0.0.2', `http://127.0.0.1:${front}/express`]);
  hap.stop();
  app.stop();
  assert.deepStrictEqual([r.ip, r.remoteAddress, r.version], ['127.0.0.2', '127.0.0.2', 2]);
});

test('HAProxy terminating TLS with send-proxy-v2-ssl-cn: the SSL TLV reaches the app', { skip: !(haproxy && curl && openssl) && 'haproxy, curl or openssl is not installed' }, async () => {
  const app = await startApp('http');
  const front = await freePort();
  const hap = await startHaproxy([`listen l4`, `  bind 127.0.0.1:${front} ssl crt ${tlsFiles().both}`,
                                  `  server s4 127.0.0.1:${app.port} send-proxy-v2-ssl-cn`]);
  await waitForPort(front);
  const r = runCurl(['-k', '--interface', '127.0.0.2', `https://127.0.0.1:${front}/ssl`]);
  hap.stop();
  app.stop();
  assert.strictEqual(r.remoteAddress, '127.0.0.2');
  assert.strictEqual(r.ssl.clientSsl, true);
  assert.match(r.ssl.version, /^TLSv1\.[23]$/);
});

test("HAProxy's health checks send a LOCAL header, which the app sees with the real addresses", { skip: !haproxy && 'haproxy is not installed' }, async () => {
  const app = await startApp('http');
  const front = await freePort();
  const hap = await startHaproxy([`listen l5`, `  bind 127.0.0.1:${front}`,
                                  `  server s5 127.0.0.1:${app.port} send-proxy-v2 check check-send-proxy inter 100`]);
  for (let i = 0; i < 100 && !app.stderr().includes('local-check'); i++) await new Promise((r) => setTimeout(r, 50));
  hap.stop();
  app.stop();
  assert.match(app.stderr(), /local-check/);
  assert.doesNotMatch(app.stderr(), /rejected/);
});

test('curl --haproxy-protocol straight to the app', { skip: !curl && 'curl is not installed' }, async () => {
  const app = await startApp('http');
  const r = runCurl(['--haproxy-protocol', `http://127.0.0.1:${app.port}/curl`]);
  app.stop();
  assert.deepStrictEqual([r.remoteAddress, r.version, r.body], ['127.0.0.1', 1, '/curl']);
});

test('nginx stream { proxy_protocol on; } in front of an http app: the app sees the client', { skip: !(nginxStream && curl) && 'nginx with the stream module, or curl, is not installed' }, async () => {
  const app = await startApp('http');
  const front = await freePort();
  const dir = fs.mkdtempSync(path.join(tmp, 'nginx-'));
  fs.writeFileSync(path.join(dir, 'nginx.conf'), [
    'load_module /usr/lib/nginx/modules/ngx_stream_module.so;',
    'worker_processes 1;', `pid ${dir}/nginx.pid;`, `error_log ${dir}/error.log;`,
    'events { worker_connections 64; }',
    `stream { server { listen 127.0.0.1:${front}; proxy_pass 127.0.0.1:${app.port}; proxy_protocol on; } }`, '',
  ].join('\n'));
  const child = spawn('nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: 'ignore' });
  children.push(child);
  await waitForPort(front);
  const r = runCurl(['--interface', '127.0.0.2', `http://127.0.0.1:${front}/nginx`]);
  child.kill('SIGTERM');
  app.stop();
  assert.deepStrictEqual([r.remoteAddress, r.version, r.body], ['127.0.0.2', 1, '/nginx']);
});
