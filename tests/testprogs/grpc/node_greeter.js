// gRPC over TLS with @grpc/grpc-js (node's own, statically linked OpenSSL),
// without generated code: messages are protobuf with one string field 1,
// encoded by hand; the service is the one of py_greeter.py.
//
//   node_greeter.js server CERT KEY   listens on 127.0.0.1:0, prints "listening PORT"
//   node_greeter.js client ADDR CA    one line per call on stdout (see py_greeter.py)
//
// grpc-js comes from npm (scripts/install-deps.sh): GRPC_JS_DIR, else /opt/tlstap-testdeps.
// The client waits DELAY_MS before its first call, as https_client.js does.
'use strict';
const fs = require('fs');
const path = require('path');

const modules = process.env.GRPC_JS_DIR || '/opt/tlstap-testdeps/node_modules';
const grpc = require(path.join(modules, '@grpc/grpc-js'));

const SERVICE = 'tlstap.Greeter';

function encode(text) {
  const data = Buffer.from(text);
  if (data.length >= 128) throw new Error('short texts only');
  return Buffer.concat([Buffer.from([0x0a, data.length]), data]);
}

function decode(message) {
  if (message[0] !== 0x0a || message[1] !== message.length - 2) throw new Error(`bad message ${message.toString('hex')}`);
  return message.subarray(2).toString();
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

function serve(certFile, keyFile) {
  const server = new grpc.Server();
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

async function callAll(address, caFile) {
  await new Promise((resolve) => setTimeout(resolve, Number(process.env.DELAY_MS || 0)));
  const Client = grpc.makeGenericClientConstructor(definition, 'Greeter');
  // The certificate names localhost; the client connects to 127.0.0.1.
  const client = new Client(address, grpc.credentials.createSsl(fs.readFileSync(caFile)),
    { 'grpc.ssl_target_name_override': 'localhost' });
  console.log(await sayHello(client, 'alice'));
  console.log(await sayHello(client, 'missing'));
  for (const reply of await chat(client, ['one', 'two', 'three'])) console.log(reply);
  client.close();
}

const [mode, first, second] = process.argv.slice(2);
if (process.argv.length === 5 && mode === 'server') {
  serve(first, second);
} else if (process.argv.length === 5 && mode === 'client') {
  callAll(first, second).catch((error) => {
    console.error(error);
    process.exit(1);
  });
} else {
  console.error('usage: node_greeter.js server CERT KEY | node_greeter.js client ADDR CA');
  process.exit(2);
}
