// Node https client (OpenSSL 3 linked statically into /usr/bin/node).
// usage: node https_client.js URL CAFILE [BODYFILE]
// Sends one request (POST with the file as body, else GET) and writes the
// response body to stdout. With WAIT_GO=1 in the environment it first waits
// for a line on stdin, so a test can start tlstap while node already runs, and
// after the response it stays until stdin ends.
'use strict';
const fs = require('fs');
const https = require('https');

const [url, cafile, bodyFile] = process.argv.slice(2);
const body = bodyFile ? fs.readFileSync(bodyFile) : null;

function send() {
  const request = https.request(url, {
    method: body ? 'POST' : 'GET',
    ca: fs.readFileSync(cafile),
    agent: false,
    headers: body ? {'Content-Length': body.length} : {},
  }, (response) => {
    const pieces = [];
    response.on('data', (piece) => pieces.push(piece));
    response.on('end', () => process.stdout.write(Buffer.concat(pieces)));
  });
  request.on('error', (error) => { console.error(error); process.exit(1); });
  request.end(body);
}

if (process.env.WAIT_GO === '1') {
  process.stdout.write('waiting\n');
  process.stdin.once('data', send);
  process.stdin.on('end', () => process.exit(0));
} else {
  send();
}
