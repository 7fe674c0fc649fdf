// Forces every listening socket of this process onto one host (kinesis-local hard-codes 0.0.0.0).
const net = require('node:net');
const host = process.env.FERRY_BIND_HOST || '127.0.0.1';
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (args[0] !== null && typeof args[0] === 'object' && !Array.isArray(args[0])) {
    args[0] = { ...args[0], host };
  } else if (typeof args[0] === 'number' || typeof args[0] === 'string') {
    const rest = args.slice(1).filter((a) => typeof a !== 'string');
    return listen.call(this, args[0], host, ...rest);
  }
  return listen.apply(this, args);
};
