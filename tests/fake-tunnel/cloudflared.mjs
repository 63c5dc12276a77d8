#!/usr/bin/env node
// A stand-in for `cloudflared tunnel --url http://127.0.0.1:PORT --no-autoupdate --metrics ADDR`
// in tests: it prints what a real quick tunnel prints on stderr (an ERR line naming
// api.trycloudflare.com first, then the banner with an https://….trycloudflare.com URL), serves
// `/quicktunnel` on the metrics address, and forwards HTTP from a loopback port of its own to
// the --url target.
//
// The seam: the metrics endpoint reports the hostname `127.0.0.1:<its port>`. Rollcall's
// cloudflared provider prefers the metrics answer over the banner line and gives a loopback
// host plain http, so the "public URL" is one this fake really serves, and a test delivery makes
// a real round trip through it. Nothing else in Rollcall knows this is not cloudflared.

import http from 'node:http';
import crypto from 'node:crypto';

function option(name) {
  const at = process.argv.indexOf(name);
  return at > 0 ? process.argv[at + 1] : undefined;
}

const target = new URL(option('--url') ?? 'http://127.0.0.1:8787');
const metrics = option('--metrics') ?? '127.0.0.1:0';
const stamp = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');
const log = (level, message) => process.stderr.write(`${stamp()} ${level} ${message}\n`);

if (process.argv[2] !== 'tunnel' || !option('--url')) {
  log('ERR', 'fake cloudflared: expected `tunnel --url URL`');
  process.exit(2);
}

const proxy = http.createServer((request, response) => {
  const forwarded = http.request(
    {
      host: target.hostname,
      port: target.port,
      method: request.method,
      path: request.url,
      headers: { ...request.headers, 'cf-connecting-ip': '203.0.113.7' },
    },
    (answer) => {
      response.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(response);
    },
  );
  forwarded.on('error', (error) => {
    log('ERR', `Request failed error="${error.message}" originService=${target.href}`);
    response.writeHead(502).end('bad gateway');
  });
  request.pipe(forwarded);
});

proxy.listen(0, '127.0.0.1', () => {
  const publicHost = `127.0.0.1:${proxy.address().port}`;
  const [metricsHost, metricsPort] = metrics.split(':');
  const server = http.createServer((request, response) => {
    if (request.url === '/quicktunnel') {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ hostname: publicHost }));
    } else {
      response.writeHead(404).end('404 page not found\n');
    }
  });
  server.listen(Number(metricsPort), metricsHost, () => {
    const words = crypto.randomBytes(6).toString('hex');
    const banner = `https://fake-${words}.trycloudflare.com`;
    log('INF', 'Thank you for trying Cloudflare Tunnel. Doing so, without a Cloudflare account, is a quick way to experiment and try it out.');
    log('INF', 'Requesting new quick Tunnel on trycloudflare.com...');
    log('ERR', 'failed to request quick Tunnel: Post "https://api.trycloudflare.com/tunnel": context deadline exceeded (retrying)');
    log('INF', '+--------------------------------------------------------------------------------------------+');
    log('INF', '|  Your quick Tunnel has been created! Visit it at (it may take some time to be reachable):  |');
    log('INF', `|  ${banner.padEnd(90)}|`);
    log('INF', '+--------------------------------------------------------------------------------------------+');
    log('INF', `Starting metrics server on ${metrics}/metrics`);
    log('INF', 'Registered tunnel connection connIndex=0 event=0 ip=198.41.200.13 location=ams08 protocol=quic');
  });
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    log('INF', `Initiating graceful shutdown due to signal ${signal.slice(3).toLowerCase()} ...`);
    process.exit(0);
  });
}
