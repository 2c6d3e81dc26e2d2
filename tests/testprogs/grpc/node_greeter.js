// gRPC over TLS with @grpc/grpc-js (node's own, statically linked OpenSSL),
// without generated code: messages are protobuf with one string field 1,
// encoded by hand; the service is the one of py_greeter.py.
//
//   node_greeter.js server CERT KEY [CODING]   listens on 127.0.0.1:0, prints "listening PORT"
//   node_greeter.js client ADDR CA             one line per call on stdout (see py_greeter.py)
//   node_greeter.js hello ADDR CA NAME [CODING]  SayHello(NAME), prints the reply
//
// CODING (gzip or deflate) compresses every message that side sends.
//
// grpc-js comes from npm (scripts/install-deps.sh): GRPC_JS_DIR, else /opt/tlstap-testdeps.
// The client waits DELAY_MS before its first call, as https_client.js does.
'use strict';
const fs = require('fs');
const path = require('path');

const modules = process.env.GRPC_JS_DIR || '/opt/tlstap-testdeps/node_modules';
const grpc = require(path.join(modules, '@grpc/grpc-js'));

const SERVICE = 'tlstap.Greeter';

// gRPC's compression algorithm numbers (grpc-js CompressionAlgorithms).
const CODINGS = { deflate: 1, gzip: 2 };

function compressionOptions(coding) {
  if (coding === undefined) return {};
  if (!(coding in CODINGS)) throw new Error(`unknown coding ${coding}`);
  return { 'grpc.default_compression_algorithm': CODINGS[coding] };
}

// A protobuf message with field 1 (wire type 2) = text, of less than 16 KiB.
function encode(text) {
  const data = Buffer.from(text);
  if (data.length >= 1 << 14) throw new Error('texts under 16 KiB only');
  const size = data.length < 128 ? [data.length] : [(data.length & 0x7f) | 0x80, data.length >> 7];
  return Buffer.concat([Buffer.from([0x0a, ...size]), data]);
}

function decode(message) {
  const [size, start] = message[1] < 128 ? [message[1], 2] : [(message[1] & 0x7f) | (message[2] << 7), 3];
  if (message[0] !== 0x0a || size !== message.length - start) throw new Error(`bad message ${message.toString('hex')}`);
  return message.subarray(start).toString();
}

const raw = (b) => b;
const definition = {
  SayHello: {
    path: `/${SERVICE}/SayHello`, requestStream: false, responseStream: false,
    requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw,
  },
  Chat: {
    path: `/${SERVICE}/Chat`, requestStream: true, responseStream: true,
    requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw,
  },
};

function serve(certFile, keyFile, coding) {
  const server = new grpc.Server(compressionOptions(coding));
  server.addService(definition, {
    SayHello(call, callback) {
      const name = decode(call.request);
      if (name === 'missing') {
        callback({ code: grpc.status.NOT_FOUND, details: `no such name: ${name}` });
        return;
      }
      callback(null, encode(`hello ${name}`));
    },
    Chat(call) {
      call.on('data', (request) => call.write(encode(`echo ${decode(request)}`)));
      call.on('end', () => call.end());
    },
  });
  const credentials = grpc.ServerCredentials.createSsl(null, [
    { cert_chain: fs.readFileSync(certFile), private_key: fs.readFileSync(keyFile) },
  ]);
  server.bindAsync('127.0.0.1:0', credentials, (error, port) => {
    if (error) throw error;
    console.log(`listening ${port}`);
  });
}

function sayHello(client, name) {
  const deadline = Date.now() + 20000;
  return new Promise((resolve) => {
    client.SayHello(encode(name), { deadline }, (error, reply) => {
      resolve(error ? `${grpc.status[error.code]} ${error.details}` : decode(reply));
    });
  });
}

function chat(client, names) {
  return new Promise((resolve, reject) => {
    const replies = [];
    const call = client.Chat({ deadline: Date.now() + 20000 });
    call.on('data', (reply) => replies.push(decode(reply)));
    call.on('error', reject);
    call.on('end', () => resolve(replies));
    for (const name of names) call.write(encode(name));
    call.end();
  });
}

function connect(address, caFile, coding) {
  const Client = grpc.makeGenericClientConstructor(definition, 'Greeter');
  // The certificate names localhost; the client connects to 127.0.0.1.
  return new Client(address, grpc.credentials.createSsl(fs.readFileSync(caFile)),
    { 'grpc.ssl_target_name_override': 'localhost', ...compressionOptions(coding) });
}

async function helloOnce(address, caFile, name, coding) {
  const client = connect(address, caFile, coding);
  console.log(await sayHello(client, name));
  client.close();
}

async function callAll(address, caFile) {
  await new Promise((resolve) => setTimeout(resolve, Number(process.env.DELAY_MS || 0)));
  const client = connect(address, caFile);
  console.log(await sayHello(client, 'alice'));
  console.log(await sayHello(client, 'missing'));
  for (const reply of await chat(client, ['one', 'two', 'three'])) console.log(reply);
  client.close();
}

function exitOnError(promise) {
  promise.catch((error) => {
    console.error(error);
    process.exit(1);
  });
}

const [mode, ...args] = process.argv.slice(2);
if (mode === 'server' && (args.length === 2 || args.length === 3)) {
  serve(...args);
} else if (mode === 'client' && args.length === 2) {
  exitOnError(callAll(...args));
} else if (mode === 'hello' && (args.length === 3 || args.length === 4)) {
  exitOnError(helloOnce(...args));
} else {
  console.error('usage: node_greeter.js server CERT KEY [CODING] | client ADDR CA | hello ADDR CA NAME [CODING]');
  process.exit(2);
}
