// The agent side of test/e2e/sigv4.test.ts and test/attacks/sigv4.test.ts: the real AWS SDK for
// JavaScript, run under `agent-vault run`, with only what run gave it (AWS_* placeholders, the
// proxy, the CA bundle). The SDK's Node handler ignores HTTPS_PROXY, so its https agent opens a
// CONNECT tunnel through the proxy itself, as a proxy agent package would. Prints one JSON line per step.
"use strict";
const { createRequire } = require("node:module");
const http = require("node:http");
const https = require("node:https");
const tls = require("node:tls");
const { execFileSync } = require("node:child_process");
const { Readable } = require("node:stream");
const load = createRequire(process.env.AWS_AGENT_MODULES);
const { STSClient, GetCallerIdentityCommand } = load("@aws-sdk/client-sts");
const { S3Client, PutObjectCommand, GetObjectCommand } = load("@aws-sdk/client-s3");
const { getSignedUrl } = load("@aws-sdk/s3-request-presigner");
const { NodeHttpHandler } = load("@smithy/node-http-handler");

const proxy = new URL(process.env.HTTPS_PROXY);
class TunnelAgent extends https.Agent {
  createConnection(options, done) {
    const auth = Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString("base64");
    const req = http.request({ host: proxy.hostname, port: proxy.port, method: "CONNECT", path: `${options.host}:${options.port}`, headers: { "proxy-authorization": `Basic ${auth}` } });
    req.on("connect", (res, socket) => {
      if (res.statusCode !== 200) return done(new Error(`CONNECT ${res.statusCode}`));
      done(null, tls.connect({ socket, servername: options.servername || options.host }));
    });
    req.on("error", done);
    req.end();
  }
}
const requestHandler = new NodeHttpHandler({ httpsAgent: new TunnelAgent({ keepAlive: false }) });
const say = (step, value) => console.log(JSON.stringify({ step, ...value }));
const fail = (step, error) => say(step, { error: String(error && (error.name || error.message)), status: error && error.$metadata && error.$metadata.httpStatusCode });

async function main() {
  const steps = process.argv.slice(2);
  const region = "eu-west-1";
  const bucket = "agent-bucket";
  const s3 = new S3Client({ region, requestHandler, maxAttempts: 1 });
  for (const step of steps) {
    try {
      if (step === "env") say(step, { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY, token: process.env.AWS_SESSION_TOKEN || null });
      if (step === "sts") {
        // The SDK's default endpoint for the region: sts.us-east-1.amazonaws.com (the aws-sts template's host).
        const sts = new STSClient({ region: "us-east-1", requestHandler, maxAttempts: 1 });
        const who = await sts.send(new GetCallerIdentityCommand({}));
        say(step, { account: who.Account, arn: who.Arn });
      }
      if (step === "put") {
        await s3.send(new PutObjectCommand({ Bucket: bucket, Key: "hello.txt", Body: "hello from the agent", ContentType: "text/plain" }));
        const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "hello.txt" }));
        say(step, { body: await got.Body.transformToString() });
      }
      if (step === "stream" || step === "stream-big") {
        // Past the guard's 8 MiB buffer the aws-chunked payload is checked as it streams.
        const data = Buffer.alloc(step === "stream" ? 200_000 : 9 * 1024 * 1024, "s");
        await s3.send(new PutObjectCommand({ Bucket: bucket, Key: "upload.bin", Body: Readable.from([data.subarray(0, 100_000), data.subarray(100_000)]), ContentLength: data.length }));
        const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "upload.bin" }));
        say(step, { length: (await got.Body.transformToByteArray()).length });
      }
      if (step === "presign") {
        const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: "hello.txt" }), { expiresIn: 600 });
        const body = execFileSync("curl", ["-sS", url], { encoding: "utf8" });
        say(step, { url, body });
      }
      if (step.startsWith("put-text=")) {
        await s3.send(new PutObjectCommand({ Bucket: bucket, Key: "note.txt", Body: step.slice("put-text=".length).replace(/\$SECRET/g, process.env.AWS_SECRET_ACCESS_KEY), ContentType: "text/plain" }));
        const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "note.txt" }));
        say(step, { body: await got.Body.transformToString() });
      }
    } catch (error) {
      fail(step, error);
    }
  }
}
main();
