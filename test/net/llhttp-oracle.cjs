// The oracle for test/net/http1-differential.test.ts: reads base64 inputs (a JSON array) on stdin,
// sends each on its own connection to a node:http server (llhttp, strict mode) and prints, per
// input, the requests it completed and its parse error, if any.
const http = require("http");
const net = require("net");
const inputs = JSON.parse(require("fs").readFileSync(0, "utf8")).map((b) => Buffer.from(b, "base64"));
const results = inputs.map(() => ({ done: [], error: null }));
const byPort = new Map();
const server = http.createServer((req, res) => {
  const i = byPort.get(req.socket.remotePort);
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    results[i].done.push([req.method, req.url, Buffer.concat(chunks).toString("latin1")]);
    res.end("ok");
  });
});
server.on("clientError", (err, socket) => {
  const i = byPort.get(socket.remotePort);
  if (i !== undefined && results[i].error === null) results[i].error = err.code || String(err.message);
  socket.destroy();
});
// Done when every connection is open and nothing has happened for a while (a loaded machine is slow).
let last = Date.now();
const touch = () => (last = Date.now());
server.on("request", touch);
server.listen(0, "127.0.0.1", () => {
  const port = server.address().port;
  let connected = 0;
  inputs.forEach((input, i) => {
    const c = net.connect(port, "127.0.0.1", () => {
      byPort.set(c.localPort, i);
      c.write(input);
      connected++;
      touch();
    });
    c.on("data", touch);
    c.on("close", touch);
    c.on("error", () => {});
  });
  const started = Date.now();
  const timer = setInterval(() => {
    if ((connected === inputs.length && Date.now() - last > 500) || Date.now() - started > 30_000) {
      clearInterval(timer);
      process.stdout.write(JSON.stringify(results));
      process.exit(0);
    }
  }, 50);
});
