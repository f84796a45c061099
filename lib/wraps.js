'use strict';

// Node's own stream wraps (TCPWrap, PipeWrap): the handles Node's accept path
// builds for each new connection. An accepted descriptor wrapped in one of
// these and given to Node's `onconnection` becomes exactly the net.Socket
// Node would have made — http, tls and every library work on it unchanged.
//
// process.binding() is the only public door to these constructors. Under
// --pending-deprecation it warns (DEP0111) on first use; that warning is
// about the user's code, not ours, so it is held back for this one lookup.

function binding(name) {
  const { noDeprecation } = process;
  process.noDeprecation = true;
  try {
    return process.binding(name);
  } finally {
    process.noDeprecation = noDeprecation;
  }
}

const { TCP, constants: TCPConstants } = binding('tcp_wrap');
const { Pipe, constants: PipeConstants } = binding('pipe_wrap');

module.exports = { TCP, TCPConstants, Pipe, PipeConstants };
