'use strict';

// Bad option values, each checked where a user can give it: createServer()
// and listen() must both throw the expected Node-style error, and a listen()
// that threw leaves the server not listening.

const assert = require('assert');
const rustNet = require('../..');

// `cases`: [options, code, error class] each.
function assertOptionErrors(cases) {
  for (const [options, code, type] of cases) {
    const matches = (err) => err instanceof type && err.code === code;
    assert.throws(() => rustNet.createServer(options), matches, `createServer(${JSON.stringify(options)})`);
    const server = rustNet.createServer();
    assert.throws(() => server.listen({ port: 0, ...options }), matches, `listen(${JSON.stringify(options)})`);
    assert.strictEqual(server.listening, false, `listening after listen(${JSON.stringify(options)})`);
  }
}

module.exports = { assertOptionErrors };
