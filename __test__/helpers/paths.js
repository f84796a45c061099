'use strict';

// Unique socket paths for IPC tests, removed when the process exits.

const fs = require('fs');
const os = require('os');
const path = require('path');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rust-net-test-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

let counter = 0;
function socketPath(label = 'sock') {
  return path.join(dir, `${label}-${process.pid}-${counter++}.sock`);
}

function abstractName(label = 'abstract') {
  return `\0rust-net-${label}-${process.pid}-${counter++}`;
}

module.exports = { abstractName, dir, socketPath };
