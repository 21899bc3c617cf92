// The system's CA bundle joins the agents' bundle: only certificates the shipped roots lack, only
// from a root-owned regular file, only PEM certificate blocks.
import { afterAll, expect, test } from "bun:test";
import { chownSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { rootCertificates } from "node:tls";
import { systemRootsBeyond } from "../../src/net/system-roots.ts";

const dir = mkdtempSync(join(tmpdir(), "av-roots-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const EXTRA = "-----BEGIN CERTIFICATE-----\nTUlJQmV4dHJhLWNvcnBvcmF0ZS1jYQ==\n-----END CERTIFICATE-----";

test("certificates the shipped roots lack are added; known ones (rewrapped) and non-PEM text are not", () => {
  const file = join(dir, "bundle.crt");
  const rewrapped = rootCertificates[0]!.replace(/\n/g, "\r\n");
  writeFileSync(file, `# a comment\n${rewrapped}\nrandom text\n${EXTRA}\n`);
  const isRoot = process.getuid?.() === 0;
  expect(systemRootsBeyond(rootCertificates, [join(dir, "missing.crt"), file])).toEqual(isRoot ? [EXTRA] : []);
});

test("a bundle not owned by root is ignored (the agent could have written it)", () => {
  if (process.getuid?.() !== 0) return;
  const file = join(dir, "planted.crt");
  writeFileSync(file, `${EXTRA}\n`);
  chownSync(file, 65534, 65534);
  expect(systemRootsBeyond(rootCertificates, [file])).toEqual([]);
});
