// The preload `run` adds to NODE_OPTIONS so that Node's global fetch goes through HTTPS_PROXY on
// Node 20, 22 and 24. Node bundles undici but, before NODE_USE_ENV_PROXY (Node 24.5), its fetch
// ignores the proxy variables, and the bundled undici is not importable. What is reachable: the
// global dispatcher undici installs under Symbol.for('undici.globalDispatcher.1') the first time
// fetch is called. Its constructor is undici's Agent, which takes a `connect` function; ours opens
// a CONNECT tunnel through the proxy (TLS inside it for https), honouring NO_PROXY. In the sandbox
// a fetch that ignored the proxy would fail; with this it works. The file holds no secret: the
// proxy's token is read from the environment at each start.
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const NODE_PRELOAD_SOURCE = String.raw`'use strict';
// Written by agent-vault run: routes Node's global fetch through HTTPS_PROXY (see agent-vault's
// src/sandbox/node-preload.ts). Does nothing when no proxy is set or fetch is missing.
(function () {
  const env = process.env;
  const proxyText = env.HTTPS_PROXY || env.https_proxy || env.HTTP_PROXY || env.http_proxy;
  if (!proxyText || typeof globalThis.fetch !== 'function') return;
  let proxy;
  try { proxy = new URL(proxyText); } catch { return; }
  if (proxy.protocol !== 'http:') return;
  const KEY = Symbol.for('undici.globalDispatcher.1');
  // Loads the bundled undici, which installs its default Agent; a data: URL never touches the network.
  try { globalThis.fetch('data:,').catch(function () {}); } catch { return; }
  const current = globalThis[KEY];
  if (!current || typeof current.constructor !== 'function') return;
  if (current.constructor.name === 'EnvHttpProxyAgent') return; // Node already honours the proxy
  const net = require('node:net');
  const tls = require('node:tls');
  const noProxy = (env.NO_PROXY || env.no_proxy || '').split(',').map(function (s) { return s.trim().toLowerCase(); }).filter(Boolean);
  function bypasses(host) {
    host = host.toLowerCase().replace(/^\[|\]$/g, '');
    return noProxy.some(function (entry) {
      if (entry === '*') return true;
      const bare = entry.replace(/^\*?\./, '').replace(/^\[|\]$/g, '');
      return host === bare || host.endsWith('.' + bare);
    });
  }
  const authorization = proxy.username ? 'Basic ' + Buffer.from(decodeURIComponent(proxy.username) + ':' + decodeURIComponent(proxy.password)).toString('base64') : null;
  function tunnel(host, port, done) {
    const socket = net.connect(Number(proxy.port) || 80, proxy.hostname.replace(/^\[|\]$/g, ''));
    const target = (net.isIPv6(host) ? '[' + host + ']' : host) + ':' + port;
    let head = Buffer.alloc(0);
    const fail = function (error) { socket.destroy(); done(error); };
    socket.setTimeout(30000, function () { fail(new Error('proxy CONNECT timed out')); });
    socket.once('error', fail);
    socket.on('data', function onData(chunk) {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) { if (head.length > 65536) fail(new Error('proxy answer too long')); return; }
      socket.removeListener('data', onData);
      socket.removeListener('error', fail);
      socket.setTimeout(0);
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(head.subarray(0, end).toString('latin1'));
      if (!status || status[1] !== '200') return fail(new Error('proxy refused CONNECT ' + target + ': ' + (status ? status[1] : 'bad answer')));
      const rest = head.subarray(end + 4);
      if (rest.length > 0) socket.unshift(rest);
      done(null, socket);
    });
    socket.write('CONNECT ' + target + ' HTTP/1.1\r\nHost: ' + target + '\r\n' + (authorization ? 'Proxy-Authorization: ' + authorization + '\r\n' : '') + '\r\n');
  }
  function connect(options, callback) {
    const host = String(options.hostname).replace(/^\[|\]$/g, '');
    const isHttps = options.protocol === 'https:';
    const port = Number(options.port) || (isHttps ? 443 : 80);
    const secure = function (error, socket) {
      if (error) return callback(error);
      if (!isHttps) return callback(null, socket);
      const servername = options.servername || (net.isIP(host) ? undefined : host);
      const secured = tls.connect({ socket: socket, servername: servername, ALPNProtocols: ['http/1.1'] });
      secured.once('secureConnect', function () { secured.removeListener('error', callback); callback(null, secured); });
      secured.once('error', callback);
    };
    if (bypasses(host)) {
      const direct = net.connect(port, host);
      direct.once('connect', function () { direct.removeListener('error', secure); secure(null, direct); });
      direct.once('error', secure);
      return;
    }
    tunnel(host, port, secure);
  }
  globalThis[KEY] = new current.constructor({ connect: connect });
})();
`;

/** Writes the preload next to the CA bundle (0644, replaced whole) and returns its path. */
export function writeNodePreload(home: string): string {
  const path = join(home, "node-preload.cjs");
  let existing: string | null = null;
  try {
    existing = readFileSync(path, "utf8");
  } catch {
    // not there yet
  }
  if (existing !== NODE_PRELOAD_SOURCE) {
    const temp = `${path}.${process.pid}.tmp`;
    writeFileSync(temp, NODE_PRELOAD_SOURCE, { mode: 0o644 });
    renameSync(temp, path);
  }
  return path;
}

/** NODE_OPTIONS with our preload added once (quoted when the path has spaces, as Node parses it). */
export function withNodePreload(nodeOptions: string | undefined, preload: string): string {
  const quoted = /[\s"\\]/.test(preload) ? `"${preload.replace(/(["\\])/g, "\\$1")}"` : preload;
  const flag = `--require ${quoted}`;
  const current = (nodeOptions ?? "").trim();
  if (current.includes(flag)) return current;
  return current === "" ? flag : `${current} ${flag}`;
}
