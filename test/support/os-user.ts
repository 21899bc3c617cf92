// The name of the uid the tests run as, from /etc/passwd: what an approver must be recorded as
// (src/shared/os-user.ts), whatever $USER says.
import { readFileSync } from "node:fs";

export function passwdName(): string {
  const uid = String(process.getuid!());
  for (const line of readFileSync("/etc/passwd", "utf8").split("\n")) {
    const [name, , id] = line.split(":");
    if (id === uid && name) return name;
  }
  throw new Error(`uid ${uid} is not in /etc/passwd`);
}
