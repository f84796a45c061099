'use strict';

// What a built addon is, read off its ELF file: the machine it is for and
// the shared libraries it needs (readelf, from binutils). build:all checks
// each binary it makes with it; packed.test.js checks the binaries a packed
// package carries.

const { spawnSync } = require('child_process');
const fs = require('fs');

// { elf, machine, needed }: whether `file` starts with the ELF magic, its
// e_machine, and its DT_NEEDED libraries. Throws when readelf fails.
function elfInfo(file) {
  const header = Buffer.alloc(20);
  const fd = fs.openSync(file, 'r');
  try {
    fs.readSync(fd, header, 0, 20, 0);
  } finally {
    fs.closeSync(fd);
  }
  const r = spawnSync('readelf', ['-d', '-W', file], { encoding: 'utf8' });
  if (r.status !== 0) {
    throw new Error(`readelf -d ${file} failed (${r.error?.message || r.signal || `exit code ${r.status}`}): ${r.stderr}`);
  }
  return {
    elf: header.readUInt32BE(0) === 0x7f454c46,
    machine: header.readUInt16LE(18),
    needed: [...r.stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]),
  };
}

module.exports = { elfInfo };
