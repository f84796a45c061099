'use strict';

// What a built addon is, read off its ELF file: the machine it is for, the
// shared libraries it needs, and whether it is stripped (readelf, from
// binutils). build:all checks each binary it makes with it; packed.test.js
// checks the binaries a packed package carries, package.test.js the one an
// install builds from source.

const { spawnSync } = require('child_process');
const fs = require('fs');

// { elf, machine, needed, stripped }: whether `file` starts with the ELF
// magic, its e_machine, its DT_NEEDED libraries, and whether it has no
// symbol table (.symtab: what `strip` removes and `file` reports as "not
// stripped"; the dynamic symbols Node looks up are in .dynsym, which stays).
// Throws when readelf fails.
function elfInfo(file) {
  const header = Buffer.alloc(20);
  const fd = fs.openSync(file, 'r');
  try {
    fs.readSync(fd, header, 0, 20, 0);
  } finally {
    fs.closeSync(fd);
  }
  const readelf = (flag) => {
    const r = spawnSync('readelf', [flag, '-W', file], { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
    if (r.status !== 0) {
      throw new Error(`readelf ${flag} ${file} failed (${r.error?.message || r.signal || `exit code ${r.status}`}): ${r.stderr}`);
    }
    return r.stdout;
  };
  return {
    elf: header.readUInt32BE(0) === 0x7f454c46,
    machine: header.readUInt16LE(18),
    needed: [...readelf('-d').matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]),
    stripped: !/\]\s+\.symtab\s/.test(readelf('-S')),
  };
}

module.exports = { elfInfo };
