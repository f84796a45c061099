'use strict';

// Small helpers shared by the parts of rust-net that watch a server.

// Makes `object[name]` an accessor that keeps its value and calls
// `onSet(value)` (with `this`) after each assignment. An accessor put there
// before (another rust-net feature watching the same property) keeps
// working: its getter serves reads and its setter runs first.
function watchProperty(object, name, onSet) {
  const prior = Object.getOwnPropertyDescriptor(object, name);
  let value = object[name];
  Object.defineProperty(object, name, {
    configurable: true,
    enumerable: true,
    get: prior?.get ?? (() => value),
    set(next) {
      if (prior?.set) prior.set.call(this, next);
      else value = next;
      onSet.call(this, next);
    },
  });
}

module.exports = { watchProperty };
