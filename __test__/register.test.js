'use strict';

// rust-net/register: the -r / --import preload that puts rust-net in place of
// node:net's server. Each scenario runs in a child process, as a preload
// affects the whole process.

const { test } = require('node:test');
const assert = require('assert');
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const root = path.join(__dirname, '..');
const registerPath = path.join(root, 'register.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rust-net-register-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

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

// ---------------------------------------------------------------------------
// Every net-based server of the process, whatever the load order.
//
// Each program below makes one server of every kind (net, http, https, tls,
// http2, http2 secure, and subclasses of net.Server and http.Server), listens
// on each, connects to each, and reports per server:
// - instanceofNetServer: `server instanceof require('net').Server` at that
//   point (true on plain Node; must stay true under register);
// - inRust: the listening socket is open twice in the process (rust-net's
//   own descriptor and the duplicate behind server._handle), read from
//   /proc/self/fd, independently of rust-net's JavaScript;
// - isRustServer: rust-net's public predicate;
// - connected: a connection reached 'connection'.
// Each program runs twice: as written (with rust-net/register), and on plain
// Node (the register step left out), where everything but inRust and
// isRustServer must be the same.

fs.writeFileSync(path.join(tmp, 'package.json'), JSON.stringify({ name: 'register-order', private: true }));
fs.mkdirSync(path.join(tmp, 'node_modules'));
fs.symlinkSync(root, path.join(tmp, 'node_modules', 'rust-net'), 'dir');

fs.writeFileSync(path.join(tmp, 'probe.js'), `
  const fs = require('fs');
  const net = require('net');
  const { isRustServer } = require('rust-net');
  function socketCopies(server) {
    const target = fs.readlinkSync('/proc/self/fd/' + server._handle.fd);
    return fs.readdirSync('/proc/self/fd').filter((fd) => {
      try { return fs.readlinkSync('/proc/self/fd/' + fd) === target; } catch { return false; }
    }).length;
  }
  module.exports = async function probe(servers) {
    const out = [];
    for (const [name, server] of servers) {
      await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', resolve);
      });
      const connected = await new Promise((resolve) => {
        server.once('connection', (socket) => { socket.destroy(); resolve(true); });
        net.connect(server.address().port, '127.0.0.1').on('error', () => {});
      });
      out.push([name, {
        instanceofNetServer: server instanceof require('net').Server,
        inRust: socketCopies(server) === 2,
        isRustServer: isRustServer(server),
        connected,
      }]);
    }
    console.log(JSON.stringify(out));
    process.exit(0);
  };
`);

// Classes defined with whatever net.Server and http.Server are at that time.
fs.writeFileSync(path.join(tmp, 'classes.js'), `
  module.exports = function defineClasses() {
    const net = require('net');
    const http = require('http');
    class NetSub extends net.Server {}
    class HttpSub extends http.Server {}
    function OldStyle() { net.Server.call(this); }
    Object.setPrototypeOf(OldStyle.prototype, net.Server.prototype);
    return [['class extends net.Server', NetSub], ['class extends http.Server', HttpSub],
            ['function + net.Server.call', OldStyle]];
  };
`);

fs.writeFileSync(path.join(tmp, 'servers.js'), `
  module.exports = function makeServers(classes) {
    const net = require('net');
    const http = require('http');
    const https = require('https');
    const tls = require('tls');
    const http2 = require('http2');
    return [
      ['net.createServer()', net.createServer()],
      ['new net.Server()', new net.Server()],
      ['http.createServer()', http.createServer()],
      ['https.createServer()', https.createServer()],
      ['tls.createServer()', tls.createServer()],
      ['http2.createServer()', http2.createServer()],
      ['http2.createSecureServer()', http2.createSecureServer()],
      ...classes.map(([name, C]) => [name, new C()]),
    ];
  };
`);

fs.writeFileSync(path.join(tmp, 'early.js'), `
  for (const m of ['net', 'http', 'https', 'tls', 'http2']) require(m);
  global.earlyClasses = require('./classes.js')();
`);

// ES modules import the builtins statically: Node loads them while linking,
// before any module of the graph (rust-net/register included) runs.
const esmBody = (registerLine, lateRegister = '') => `
  ${registerLine}
  import net, { createServer, Server } from 'node:net';
  import http from 'node:http';
  import https from 'node:https';
  import tls from 'node:tls';
  import http2 from 'node:http2';
  import { createRequire } from 'node:module';
  const require = createRequire(import.meta.url);
  class NetSub extends Server {}
  class HttpSub extends http.Server {}
  const servers = [
    ['named createServer()', createServer()],
    ['new (named Server)()', new Server()],
    ['net.createServer()', net.createServer()],
    ['http.createServer()', http.createServer()],
    ['https.createServer()', https.createServer()],
    ['tls.createServer()', tls.createServer()],
    ['http2.createServer()', http2.createServer()],
    ['http2.createSecureServer()', http2.createSecureServer()],
    ['class extends Server', new NetSub()],
    ['class extends http.Server', new HttpSub()],
  ];
  ${lateRegister}
  require('./probe.js')(servers);
`;

const REGISTER = "require('rust-net/register');";
const forms = [
  {
    name: 'CommonJS, node -r rust-net/register',
    file: 'flag.js',
    source: () => "require('./probe.js')(require('./servers.js')(require('./classes.js')()));",
    args: (file, on) => [...(on ? ['-r', 'rust-net/register'] : []), file],
  },
  {
    name: 'CommonJS, builtins and classes loaded by an earlier -r, then -r rust-net/register',
    file: 'early-flag.js',
    source: () => "require('./probe.js')(require('./servers.js')(global.earlyClasses));",
    args: (file, on) => ['-r', './early.js', ...(on ? ['-r', 'rust-net/register'] : []), file],
  },
  {
    name: 'CommonJS, require(\'rust-net/register\') after http & co. and the classes',
    file: 'late-require.js',
    source: (on) => `
      for (const m of ['net', 'http', 'https', 'tls', 'http2']) require(m);
      const classes = require('./classes.js')();
      ${on ? REGISTER : ''}
      require('./probe.js')(require('./servers.js')(classes));`,
    args: (file) => [file],
  },
  {
    name: 'CommonJS, require(\'rust-net/register\') after the servers were made, before listen()',
    file: 'before-listen.js',
    source: (on) => `
      const servers = require('./servers.js')(require('./classes.js')());
      ${on ? REGISTER : ''}
      require('./probe.js')(servers);`,
    args: (file) => [file],
  },
  {
    name: 'ES modules, node --import rust-net/register',
    file: 'flag.mjs',
    source: () => esmBody(''),
    args: (file, on) => [...(on ? ['--import', 'rust-net/register'] : []), file],
  },
  {
    name: 'ES modules, import \'rust-net/register\' then import http from \'node:http\'',
    file: 'import-first.mjs',
    source: (on) => esmBody(on ? "import 'rust-net/register';" : ''),
    args: (file) => [file],
  },
  {
    name: 'ES modules, await import(\'rust-net/register\') after the servers were made',
    file: 'import-late.mjs',
    source: (on) => esmBody('', on ? "await import('rust-net/register');" : ''),
    args: (file) => [file],
  },
];

function runProgram(args) {
  const r = spawnSync(process.execPath, args, { cwd: tmp, encoding: 'utf8', timeout: 30000 });
  assert.strictEqual(r.status, 0, `node ${args.join(' ')} failed (${r.signal || r.status}):\n${r.stdout}\n${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  return { result: JSON.parse(lines[lines.length - 1]), stderr: r.stderr };
}

for (const form of forms) {
  test(`every net-based server listens in Rust: ${form.name}`, () => {
    const runs = {};
    for (const on of [false, true]) {
      const file = `${on ? 'on' : 'off'}-${form.file}`;
      fs.writeFileSync(path.join(tmp, file), form.source(on));
      runs[on] = runProgram(form.args(file, on));
    }
    const plain = runs.false.result;
    const registered = runs.true.result;
    assert.deepStrictEqual(registered.map(([name]) => name), plain.map(([name]) => name));
    assert.ok(plain.length >= 9, `only ${plain.length} servers`);
    for (const [name, facts] of plain) {
      assert.deepStrictEqual(facts, {
        instanceofNetServer: true, inRust: false, isRustServer: false, connected: true,
      }, `plain Node: ${name}`);
    }
    for (const [name, facts] of registered) {
      assert.deepStrictEqual(facts, {
        instanceofNetServer: true, inRust: true, isRustServer: true, connected: true,
      }, `under rust-net/register: ${name}`);
    }
    // Nothing to warn about: every server is in Rust.
    assert.strictEqual(runs.true.stderr, '');
  });
}

test('instanceof holds both ways under register, and subclasses keep their own', () => {
  const { result } = run(['-r', 'http', '-r', 'rust-net/register', '-e', `
    const net = require('net');
    const http = require('http');
    const rustNet = require('rust-net');
    const NodeServer = Object.getPrototypeOf(rustNet.Server);
    class Mine extends rustNet.Server {}
    const plainHttp = http.createServer();
    console.log(JSON.stringify({
      rustIsNet: rustNet.createServer() instanceof net.Server,
      rustIsNodeServer: rustNet.createServer() instanceof NodeServer,
      netIsRust: net.createServer() instanceof rustNet.Server,
      earlyHttpIsNet: plainHttp instanceof net.Server,
      earlyHttpIsHttp: plainHttp instanceof http.Server,
      notAServer: ({}) instanceof net.Server || null instanceof net.Server,
      mineIsMine: new Mine() instanceof Mine,
      otherIsNotMine: net.createServer() instanceof Mine || plainHttp instanceof Mine,
    }));`]);
  assert.deepStrictEqual(result, {
    rustIsNet: true, rustIsNodeServer: true, netIsRust: true, earlyHttpIsNet: true,
    earlyHttpIsHttp: true, notAServer: false, mineIsMine: true, otherIsNotMine: false,
  });
});

test('a child process receives an http server made before register, as on plain Node', () => {
  // Node's child_process checks `instanceof net.Server` to send a server.
  const program = (on) => `
    const http = require('http');
    const server = http.createServer();
    ${on ? REGISTER : ''}
    const { fork } = require('child_process');
    server.listen(0, '127.0.0.1', () => {
      const child = fork('-e', ['process.on("message", (m, s) => { process.send(typeof s.listen); process.exit(); })'],
                         { execArgv: [] });
      child.send('server', server);
      child.on('message', (type) => {
        const inRust = require('rust-net').isRustServer(server);
        server.close();
        console.log(JSON.stringify({ type, inRust }));
      });
    });`;
  fs.writeFileSync(path.join(tmp, 'send-off.js'), program(false));
  fs.writeFileSync(path.join(tmp, 'send-on.js'), program(true));
  assert.deepStrictEqual(runProgram(['send-off.js']).result, { type: 'function', inRust: false });
  assert.deepStrictEqual(runProgram(['send-on.js']).result, { type: 'function', inRust: true });
});

test('a server already listening when register runs stays on node:net, with warning RUST_NET_REGISTER_LATE', () => {
  const program = (on) => `
    const http = require('http');
    const warned = [];
    process.on('warning', (w) => warned.push([w.code, w.message]));
    const early = http.createServer((req, res) => res.end('early'));
    early.listen(0, '127.0.0.1', () => {
      ${on ? REGISTER : ''}
      const later = http.createServer((req, res) => res.end('later'));
      later.listen(0, '127.0.0.1', async () => {
        const get = (server) => new Promise((resolve) => http.get(
          { port: server.address().port, host: '127.0.0.1', agent: false },
          (res) => { let b = ''; res.on('data', (d) => { b += d; }); res.on('end', () => resolve(b)); }));
        const bodies = [await get(early), await get(later)];
        const { isRustServer } = require('rust-net');
        console.log(JSON.stringify({
          bodies, inRust: [isRustServer(early), isRustServer(later)], port: early.address().port,
          warned,
        }));
        process.exit(0);
      });
    });`;
  fs.writeFileSync(path.join(tmp, 'already-off.js'), program(false));
  fs.writeFileSync(path.join(tmp, 'already-on.js'), program(true));
  const plain = runProgram(['already-off.js']).result;
  assert.deepStrictEqual(plain.bodies, ['early', 'later']);
  assert.deepStrictEqual(plain.inRust, [false, false]);
  assert.deepStrictEqual(plain.warned, []);

  const registered = runProgram(['already-on.js']).result;
  assert.deepStrictEqual(registered.bodies, ['early', 'later']);
  assert.deepStrictEqual(registered.inRust, [false, true]);
  assert.strictEqual(registered.warned.length, 1, JSON.stringify(registered.warned));
  const [code, message] = registered.warned[0];
  assert.strictEqual(code, 'RUST_NET_REGISTER_LATE');
  assert.match(message, new RegExp(`already listening through node:net \\(Server on 127\\.0\\.0\\.1 port ${registered.port}\\)`));
  assert.match(message, /node -r rust-net\/register/);
});

test('a handle rust-net cannot take over listens the node:net way, with warning RUST_NET_NOT_IN_RUST', () => {
  // listen({ handle }) with a TCP wrap that has no socket yet: libuv makes
  // one and listens on it; rust-net has nothing to duplicate.
  const program = `
    const warned = [];
    process.on('warning', (w) => warned.push(w.code));
    const net = require('net');
    const { TCP, constants } = process.binding('tcp_wrap');
    const server = net.createServer((socket) => socket.end('hi'));
    server.listen({ handle: new TCP(constants.SERVER) }, () => {
      let data = '';
      net.connect(server.address().port, '127.0.0.1').on('data', (d) => { data += d; }).on('end', () => {
        setImmediate(() => {
          console.log(JSON.stringify({ data, inRust: require('rust-net').isRustServer(server), warned }));
          process.exit(0);
        });
      });
    });`;
  assert.deepStrictEqual(run(['-e', program]).result, { data: 'hi', inRust: false, warned: [] });
  assert.deepStrictEqual(run(['-r', 'rust-net/register', '-e', program]).result,
                         { data: 'hi', inRust: false, warned: ['RUST_NET_NOT_IN_RUST'] });
});

test('register twice (and through another path) installs once', () => {
  const { result } = run(['-r', 'rust-net/register', '-e', `
    const rustNet = require('rust-net');
    const NodeServer = Object.getPrototypeOf(rustNet.Server);
    const first = NodeServer.prototype._listen2;
    require(${JSON.stringify(registerPath)});
    require('rust-net/register');
    const server = require('http').createServer();
    server.listen(0, '127.0.0.1', () => {
      console.log(JSON.stringify({
        same: NodeServer.prototype._listen2 === first,
        inRust: rustNet.isRustServer(server),
      }));
      server.close();
    });`]);
  assert.deepStrictEqual(result, { same: true, inRust: true });
});
