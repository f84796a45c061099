'use strict';

// Binding a pipe (Unix domain socket) name exactly as the running Node does.

const UV_EINVAL = -22;

// sizeof(sockaddr_un.sun_path) on Linux.
const SUN_PATH_LEN = 108;

// Node versions bind pipe names differently, through their libuv version
// and their own flags, and rust-net does what the Node it runs in does:
// - libuv < 1.46 (Node 18) copies the name like strlcpy: at most 107 bytes,
//   up to the first NUL (so an "abstract" name becomes the all-zero one);
// - later libuv uses up to all 108 bytes of sun_path;
// - libuv < 1.48 (Node 20) gives abstract names the whole address size, and
//   unlinks the untruncated name on close (a truncated socket file stays);
// - Node 24 refuses names longer than sun_path (EINVAL).
const pipeNamePolicy = (() => {
  const [uvMajor, uvMinor] = process.versions.uv.split('.').map(Number);
  const nodeMajor = Number(process.versions.node.split('.')[0]);
  const uvAtLeast = (minor) => uvMajor > 1 || (uvMajor === 1 && uvMinor >= minor);
  return {
    cString: !uvAtLeast(46),
    refuseLong: nodeMajor >= 24,
    maxBytes: uvAtLeast(46) ? SUN_PATH_LEN : SUN_PATH_LEN - 1,
    exactAbstractLength: uvAtLeast(48),
  };
})();

// Binds `listener` at pipe `path` (shared across threads when `share`):
// returns 0 or a libuv error number.
function bindPipe(listener, path, share) {
  const name = Buffer.from(path);
  let bindName = name;
  if (pipeNamePolicy.cString) {
    const nul = name.indexOf(0);
    if (nul !== -1) bindName = nul === 0 ? Buffer.alloc(1) : name.subarray(0, nul);
  }
  if (bindName.length > pipeNamePolicy.maxBytes) {
    if (pipeNamePolicy.refuseLong && bindName.length > SUN_PATH_LEN) return UV_EINVAL;
    bindName = bindName.subarray(0, pipeNamePolicy.maxBytes);
  }
  const isAbstract = bindName[0] === 0;
  const unlinkName = isAbstract ? null :
    pipeNamePolicy.exactAbstractLength ? bindName : name;
  if (share) return listener.sharePipe(bindName, unlinkName, !pipeNamePolicy.exactAbstractLength);
  return listener.bindPipe(bindName, unlinkName, !pipeNamePolicy.exactAbstractLength);
}

module.exports = { bindPipe };
