'use strict';

// systemd socket activation (docs/systemd.md): `listen({ systemd: true })`
// listens on the first socket systemd passed, `listen({ systemd: 'web' })`
// on the one its unit names `FileDescriptorName=web`. The environment is
// read as sd_listen_fds(3) reads it (LISTEN_PID must be this process,
// LISTEN_FDS counts the descriptors from 3, LISTEN_FDNAMES names them), the
// descriptor is checked in Rust (src/systemd.rs: a listening stream socket,
// made close-on-exec), and listen() then goes on as Node's listen({ fd }):
// Rust accepts on it, and close() closes it.

const native = require('./native');
const { invalidArgType, invalidArgValue } = require('./errors');

// sd_listen_fds(3)'s SD_LISTEN_FDS_START.
const LISTEN_FDS_START = 3;
// listen() options that say where to listen, which `systemd` replaces.
const WHERE = ['port', 'host', 'path', 'fd', 'handle', 'addresses'];

function noSocket(message) {
  const err = new Error(`rust-net: listen({ systemd }): ${message}`);
  err.code = 'ERR_RUST_NET_NO_SYSTEMD_SOCKET';
  return err;
}

// The descriptor systemd passed for `wanted` (true: the first; a string:
// the first of that FileDescriptorName), from `env`.
function passedFd(wanted, env = process.env) {
  const { LISTEN_PID: pid, LISTEN_FDS: fds, LISTEN_FDNAMES: fdNames } = env;
  if (pid === undefined || fds === undefined) {
    throw noSocket('LISTEN_PID and LISTEN_FDS are not set: this process was not started by systemd socket activation');
  }
  if (!/^\d+$/.test(pid) || Number(pid) !== process.pid) {
    throw noSocket(`LISTEN_PID is ${pid}, not this process (${process.pid}): the sockets were passed to another`);
  }
  if (!/^\d+$/.test(fds) || Number(fds) < 1) throw noSocket(`LISTEN_FDS is '${fds}': no socket was passed`);
  const count = Number(fds);
  if (wanted === true) return LISTEN_FDS_START;
  // Without LISTEN_FDNAMES every descriptor is named 'unknown'.
  const names = fdNames === undefined ? [] : fdNames.split(':');
  const index = names.indexOf(wanted);
  if (index < 0 || index >= count) {
    throw noSocket(`no socket is named '${wanted}' (LISTEN_FDNAMES is ${fdNames === undefined ? 'not set' : `'${fdNames}'`})`);
  }
  return LISTEN_FDS_START + index;
}

// listen()'s arguments with `systemd` replaced by the passed descriptor
// (`{ ...options, fd }`), or null when listen() was not asked for it.
// Throws as Node's listen() throws for bad options; the server is then not
// listening and no descriptor changed hands.
function systemdListenArgs(args) {
  const options = args[0];
  if (options === null || typeof options !== 'object' || options.systemd === undefined ||
      options.systemd === false) {
    return null;
  }
  const { systemd } = options;
  if (systemd !== true && typeof systemd !== 'string') {
    throw invalidArgType('options.systemd', 'one of type boolean or string', systemd);
  }
  if (typeof systemd === 'string' && (systemd === '' || systemd.includes(':'))) {
    throw invalidArgValue('options.systemd', systemd, 'must be true or a FileDescriptorName');
  }
  const where = WHERE.find((key) => options[key] !== undefined);
  if (where !== undefined) {
    throw invalidArgValue('options.systemd', systemd, `cannot be combined with '${where}'`);
  }
  const fd = passedFd(systemd);
  const unfit = native.systemdCheck(fd);
  if (unfit != null) {
    const err = new TypeError(`rust-net: descriptor ${fd} from systemd ${unfit}`);
    err.code = 'ERR_INVALID_FD_TYPE';
    throw err;
  }
  const rest = { ...options, fd };
  delete rest.systemd;
  return [rest, ...args.slice(1)];
}

module.exports = { passedFd, systemdListenArgs };
