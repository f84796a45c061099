'use strict';

// rust-net/register: the -r / --import preload that puts rust-net in place of
// node:net's server. Each scenario runs in a child process, as a preload
// affects the whole process.

const { test } = require('node:test');
const assert = require('assert');
const { spawnSync } = require('child_process');
const path = require('path');

const root = path.join(__dirname, '..');
const registerPath = path.join(root, 'register.js');

// Runs `node <args>` from the package root, where `rust-net/register` and
// `rust-net` resolve through the package's own exports (self-reference).
// Returns the JSON the child printed last.
function run(args, { cwd = root } = {}) {
  const r = spawnSync(process.execPath, args, { cwd, encoding: 'utf8', timeout: 20000 });
  assert.strictEqual(r.status, 0, `child failed (${r.signal || r.status}):\n${r.stdout}\n${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  return { result: JSON.parse(lines[lines.length - 1]), stderr: r.stderr };
}

// Facts about a server made by the code under test, reported by the child:
// whose class it is, and whether its listening socket is rust-net's (Node's
// accept path goes through TCPWrap.prototype.listen; rust-net redirects
// listen() to the native listener).
const probe = `
  function facts(server, done) {
    const { TCP } = process.binding('tcp_wrap');
    const rustNet = require(${JSON.stringify(root)});
    server.listen(0, '127.0.0.1', () => {
      const out = {
        instanceofNetServer: server instanceof require('net').Server,
        instanceofRustServer: server instanceof rustNet.Server,
        listensInRust: server._handle.listen !== TCP.prototype.listen,
      };
      const c = require('net').connect(server.address().port, '127.0.0.1');
      server.once('connection', (socket) => {
        out.connection = socket instanceof require('net').Socket;
        socket.destroy();
        c.destroy();
        server.close(() => done(out));
      });
    });
  }
`;

test('control: without the preload, net.createServer() is Node\'s own', () => {
  const { result } = run(['-e', `${probe}
    facts(require('net').createServer(), (out) => console.log(JSON.stringify(out)));`]);
  assert.deepStrictEqual(result, {
    instanceofNetServer: true, instanceofRustServer: false, listensInRust: false, connection: true,
  });
});

test('node -r rust-net/register (CommonJS): net.createServer and net.Server are rust-net\'s', () => {
  const { result } = run(['-r', 'rust-net/register', '-e', `${probe}
    const net = require('net');
    const rustNet = require('rust-net');
    const identity = {
      Server: net.Server === rustNet.Server,
      createServer: net.createServer === rustNet.createServer,
      exports: require('rust-net/register').Server === rustNet.Server,
    };
    facts(net.createServer(), (viaCreateServer) => {
      facts(new net.Server(), (viaNew) => {
        facts(net.Server(), (viaCall) => {
          console.log(JSON.stringify({ identity, viaCreateServer, viaNew, viaCall }));
        });
      });
    });`]);
  const rust = { instanceofNetServer: true, instanceofRustServer: true, listensInRust: true, connection: true };
  assert.deepStrictEqual(result, {
    identity: { Server: true, createServer: true, exports: true },
    viaCreateServer: rust,
    viaNew: rust,
    viaCall: rust,
  });
});

test('node -r <path>/register.js works from any directory', () => {
  const { result } = run(['-r', registerPath, '-e', `${probe}
    facts(require('net').createServer(), (out) => console.log(JSON.stringify(out)));`], { cwd: '/' });
  assert.deepStrictEqual(result, {
    instanceofNetServer: true, instanceofRustServer: true, listensInRust: true, connection: true,
  });
});

test('node --import rust-net/register (ESM): named imports of node:net are rust-net\'s', () => {
  const { result } = run(['--import', 'rust-net/register', '--input-type=module', '-e', `
    import { createServer, Server } from 'node:net';
    import * as ns from 'net';
    import net from 'node:net';
    import rustNet from 'rust-net';
    import { createRequire } from 'node:module';
    const require = createRequire(${JSON.stringify(path.join(root, 'package.json'))});
    ${probe}
    const identity = {
      namedServer: Server === rustNet.Server,
      namedCreateServer: createServer === rustNet.createServer,
      namespace: ns.Server === rustNet.Server && ns.createServer === rustNet.createServer,
      default: net.Server === rustNet.Server && net.createServer === rustNet.createServer,
      required: require('net').Server === rustNet.Server,
    };
    facts(createServer(), (viaNamed) => {
      facts(new Server(), (viaNew) => console.log(JSON.stringify({ identity, viaNamed, viaNew })));
    });`]);
  const rust = { instanceofNetServer: true, instanceofRustServer: true, listensInRust: true, connection: true };
  assert.deepStrictEqual(result, {
    identity: { namedServer: true, namedCreateServer: true, namespace: true, default: true, required: true },
    viaNamed: rust,
    viaNew: rust,
  });
});

test('register after node:net was already imported: syncBuiltinESMExports updates the named exports', () => {
  const { result } = run(['--input-type=module', '-e', `
    import { createServer as before } from 'node:net';
    import * as ns from 'node:net';
    import { createRequire } from 'node:module';
    const require = createRequire(${JSON.stringify(path.join(root, 'package.json'))});
    const wasNode = before === require('net').createServer;
    const rustNet = require('rust-net/register');
    console.log(JSON.stringify({
      wasNode,
      live: ns.createServer === rustNet.createServer && ns.Server === rustNet.Server,
    }));`]);
  assert.deepStrictEqual(result, { wasNode: true, live: true });
});

test('classes extending net.Server under the preload listen in Rust', () => {
  const { result } = run(['-r', 'rust-net/register', '-e', `${probe}
    const net = require('net');
    class MyServer extends net.Server {}
    function OldStyle() { net.Server.call(this); }
    Object.setPrototypeOf(OldStyle.prototype, net.Server.prototype);
    facts(new MyServer(), (es6) => facts(new OldStyle(), (old) => console.log(JSON.stringify({ es6, old }))));`]);
  const rust = { instanceofNetServer: true, instanceofRustServer: true, listensInRust: true, connection: true };
  assert.deepStrictEqual(result, { es6: rust, old: rust });
});

// An http/https/tls server of a module loaded after the preload extends the
// patched net.Server: it is a rust-net server and must work as one.
test('http.createServer still works under the preload', () => {
  const { result } = run(['-r', 'rust-net/register', '-e', `
    const http = require('http');
    const net = require('net');
    const { TCP } = process.binding('tcp_wrap');
    const server = http.createServer((req, res) => res.end('hello ' + req.url));
    server.listen(0, '127.0.0.1', () => {
      const facts = {
        instanceofNetServer: server instanceof net.Server,
        allowHalfOpen: server.allowHalfOpen,
        listensInRust: server._handle.listen !== TCP.prototype.listen,
      };
      http.get({ port: server.address().port, host: '127.0.0.1', path: '/x', agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => body += d);
        res.on('end', () => server.close(() => {
          console.log(JSON.stringify({ ...facts, status: res.statusCode, body }));
        }));
      });
    });`]);
  assert.deepStrictEqual(result, {
    instanceofNetServer: true, allowHalfOpen: true, listensInRust: true, status: 200, body: 'hello /x',
  });
});

test('https and tls servers still construct and listen under the preload', () => {
  const { result } = run(['-r', 'rust-net/register', '-e', `
    const https = require('https');
    const tls = require('tls');
    const servers = [https.createServer(), tls.createServer()];
    let pending = servers.length;
    const out = [];
    for (const s of servers) {
      s.listen(0, '127.0.0.1', () => {
        out.push([s.constructor.name, s instanceof require('net').Server, typeof s.address().port]);
        s.close(() => { if (--pending === 0) console.log(JSON.stringify(out.sort())); });
      });
    }`]);
  assert.deepStrictEqual(result, [['Server', true, 'number'], ['Server', true, 'number']]);
});

// http captured net.Server before the preload ran: its servers extend Node's
// own Server and must still be set up fully and work.
test('http loaded before the preload: its servers still work', () => {
  const r = spawnSync(process.execPath, ['-r', 'http', '-r', 'rust-net/register', '-e', `
    const http = require('http');
    const server = http.createServer((req, res) => res.end('ok'));
    server.listen(0, '127.0.0.1', () => {
      http.get({ port: server.address().port, host: '127.0.0.1', agent: false }, (res) => {
        res.resume();
        res.on('end', () => server.close(() => {
          console.log(JSON.stringify({ allowHalfOpen: server.allowHalfOpen, status: res.statusCode }));
        }));
      });
    });`], { cwd: root, encoding: 'utf8', timeout: 20000 });
  assert.strictEqual(r.status, 0, r.stderr);
  assert.strictEqual(r.stderr, '');
  assert.deepStrictEqual(JSON.parse(r.stdout.trim()), { allowHalfOpen: true, status: 200 });
});

test('the preload leaves the rest of node:net alone and can be loaded twice', () => {
  const { result } = run(['-e', `
    const net = require('net');
    const before = { ...net };
    const first = require('rust-net/register');
    const second = require(${JSON.stringify(registerPath)});
    const changed = Object.keys(net).filter((k) => net[k] !== before[k]).sort();
    console.log(JSON.stringify({ changed, same: first === second || first.Server === second.Server }));`]);
  assert.deepStrictEqual(result, { changed: ['Server', 'createServer'], same: true });
});
