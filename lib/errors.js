'use strict';

// Node's argument errors (ERR_INVALID_ARG_TYPE, ERR_INVALID_ARG_VALUE,
// ERR_OUT_OF_RANGE), worded as lib/internal/errors.js words them for an
// option property, so that rust-net's own options fail as Node's do. One
// place for every option module (lib/options.js, lib/socket-options.js,
// lib/addresses.js, lib/systemd.js).

const { inspect } = require('util');

// How Node describes a value it received ("type string ('x')", "an
// instance of Object").
function describeReceived(value) {
  if (value == null) return ` ${value}`;
  if (typeof value === 'function') return ` function ${value.name}`;
  if (typeof value === 'object') {
    const name = value.constructor?.name;
    return name ? ` an instance of ${name}` : ' [object]';
  }
  let shown = String(value);
  if (shown.length > 28) shown = `${shown.slice(0, 25)}...`;
  if (typeof value === 'string') shown = `'${shown}'`;
  return ` type ${typeof value} (${shown})`;
}

function invalidArgType(name, expected, value) {
  const err = new TypeError(`The "${name}" property must be ${expected}. Received${describeReceived(value)}`);
  err.code = 'ERR_INVALID_ARG_TYPE';
  return err;
}

function invalidArgValue(name, value, reason) {
  let shown = inspect(value);
  if (shown.length > 128) shown = `${shown.slice(0, 128)}...`;
  const err = new TypeError(`The property '${name}' ${reason}. Received ${shown}`);
  err.code = 'ERR_INVALID_ARG_VALUE';
  return err;
}

// A number as Node's ERR_OUT_OF_RANGE shows the one it received: integers
// beyond 2 ** 32 grouped by threes with underscores, -0 as -0.
function shownNumber(value) {
  if (Object.is(value, -0)) return '-0';
  const text = String(value);
  if (!Number.isInteger(value) || Math.abs(value) <= 2 ** 32) return text;
  const sign = value < 0 ? '-' : '';
  const digits = text.slice(sign.length);
  const head = digits.length % 3 || 3;
  const groups = [digits.slice(0, head)];
  for (let i = head; i < digits.length; i += 3) groups.push(digits.slice(i, i + 3));
  return sign + groups.join('_');
}

function outOfRange(name, range, value) {
  const err = new RangeError(`The value of "${name}" is out of range. It must be ${range}. Received ${shownNumber(value)}`);
  err.code = 'ERR_OUT_OF_RANGE';
  return err;
}

// An integer option from `min` to `max`, as Node's validateInteger checks.
function readInteger(value, name, min, max) {
  if (typeof value !== 'number') throw invalidArgType(name, 'of type number', value);
  if (!Number.isInteger(value)) throw outOfRange(name, 'an integer', value);
  if (value < min || value > max) throw outOfRange(name, `>= ${min} && <= ${max}`, value);
  return value;
}

module.exports = { invalidArgType, invalidArgValue, outOfRange, readInteger };
