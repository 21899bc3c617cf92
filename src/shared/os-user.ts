// The name of the user this process runs as, for audit records (`approved by tui:alice`). Bun's
// os.userInfo() takes the name from $USER and answers "unknown" without it (root under sudo -i,
// systemd, cron, containers), so the uid is looked up in /etc/passwd first; the environment is only
// a fallback, and the uid itself the last word.
import { readFileSync } from "node:fs";
import { userInfo } from "node:os";

export function osUserName(): string {
  const uid = process.getuid?.();
  if (uid !== undefined) {
    try {
      for (const line of readFileSync("/etc/passwd", "utf8").split("\n")) {
        const [name, , id] = line.split(":");
        if (name && id === String(uid)) return name;
      }
    } catch {
      // no /etc/passwd (macOS keeps users in Directory Services)
    }
  }
  try {
    const name = userInfo().username;
    if (name && name !== "unknown") return name;
  } catch {
    // no user record at all
  }
  return uid === undefined ? "unknown" : `uid ${uid}`;
}
