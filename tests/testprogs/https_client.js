// Node https client (OpenSSL 3 linked statically into /usr/bin/node).
// usage: node https_client.js URL CAFILE [BODYFILE]
// Sends one request (POST with the file as body, else GET) and writes the
// response body to stdout.
// PARALLEL=N: N requests at once on N connections of the one event loop,
// request i's body prefixed with "request i\n" so each is distinct.
// DELAY_MS=N: waits N ms before sending.
// WAIT_GO=1: first waits for a line on stdin, so a test can start tlstap while
// node already runs, and after the responses stays until stdin ends.
'use strict';
const fs = require('fs');
const https = require('https');

const [url, cafile, bodyFile] = process.argv.slice(2);
const body = bodyFile ? fs.readFileSync(bodyFile) : null;
const parallel = Number(process.env.PARALLEL || 1);

function send(index) {
  const payload = body && parallel > 1 ? Buffer.concat([Buffer.from(`request ${index}\n`), body]) : body;
  const request = https.request(url, {
    method: payload ? 'POST' : 'GET',
    ca: fs.readFileSync(cafile),
    agent: false,
    headers: payload ? {'Content-Length': payload.length} : {},
  }, (response) => {
    const pieces = [];
    response.on('data', (piece) => pieces.push(piece));
    response.on('end', () => process.stdout.write(Buffer.concat(pieces)));
  });
  request.on('error', (error) => { console.error(error); process.exit(1); });
  request.end(payload);
}

function sendAll() {
  for (let i = 0; i < parallel; i++) send(i);
}

if (process.env.WAIT_GO === '1') {
  process.stdout.write('waiting\n');
  process.stdin.once('data', sendAll);
  process.stdin.on('end', () => process.exit(0));
} else {
  setTimeout(sendAll, Number(process.env.DELAY_MS || 0));
}
