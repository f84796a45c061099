'use strict';

// PROXY protocol headers for tests, written from HAProxy's
// doc/proxy-protocol.txt: v1 lines and v2 binary headers with TLVs and an
// optional CRC32C, well-formed or deliberately broken.

const net = require('net');

const SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

function v1(source, destination) {
  if (source === 'UNKNOWN') return Buffer.from('PROXY UNKNOWN\r\n');
  const family = net.isIPv6(source.address) ? 'TCP6' : 'TCP4';
  return Buffer.from(`PROXY ${family} ${source.address} ${destination.address} ${source.port} ${destination.port}\r\n`);
}

// CRC32C (Castagnoli), reflected, as the spec's PP2_TYPE_CRC32C.
const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32c(buf) {
  let crc = 0xffffffff;
  for (const byte of buf) crc = CRC_TABLE[(crc ^ byte) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function tlv(type, value) {
  const v = Buffer.from(value);
  const head = Buffer.alloc(3);
  head[0] = type;
  head.writeUInt16BE(v.length, 1);
  return Buffer.concat([head, v]);
}

// A v2 header. `command`: 'PROXY' | 'LOCAL'; `source`/`destination`:
// { address, port } (IPv4 or IPv6), or omitted for UNSPEC; `tlvs`: list of
// [type, value]; `crc`: 'good' | 'bad' adds a CRC32C TLV; `lengthOverride`
// writes a different length field.
function v2({ command = 'PROXY', source, destination, tlvs = [], crc, lengthOverride } = {}) {
  let famByte = 0x00;
  let addresses = Buffer.alloc(0);
  if (source) {
    const ipv6 = net.isIPv6(source.address);
    famByte = ipv6 ? 0x21 : 0x11; // INET/INET6 over STREAM
    const ip = (a) => (ipv6 ? ipv6Bytes(a) : Buffer.from(a.split('.').map(Number)));
    const ports = Buffer.alloc(4);
    ports.writeUInt16BE(source.port, 0);
    ports.writeUInt16BE(destination.port, 2);
    addresses = Buffer.concat([ip(source.address), ip(destination.address), ports]);
  }
  const tlvBytes = tlvs.map(([t, v]) => tlv(t, v));
  if (crc) tlvBytes.push(tlv(0x03, Buffer.alloc(4)));
  const body = Buffer.concat([addresses, ...tlvBytes]);
  const head = Buffer.alloc(16);
  SIGNATURE.copy(head);
  head[12] = 0x20 | (command === 'LOCAL' ? 0x0 : 0x1);
  head[13] = famByte;
  head.writeUInt16BE(lengthOverride ?? body.length, 14);
  const header = Buffer.concat([head, body]);
  if (crc) {
    const sum = crc32c(header) ^ (crc === 'bad' ? 1 : 0);
    header.writeUInt32BE(sum >>> 0, header.length - 4);
  }
  return header;
}

function ipv6Bytes(address) {
  const [head, tail = ''] = address.split('::');
  const parts = (s) => (s ? s.split(':') : []);
  const h = parts(head);
  const t = parts(tail);
  const groups = address.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

module.exports = { SIGNATURE, crc32c, tlv, v1, v2 };
