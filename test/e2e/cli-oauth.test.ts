// `oauth paste` of an access token alone (issue 15), through the binary: no token URL is demanded
// (there is nothing to refresh with), the note says the token is used until it expires or is
// replaced instead of blaming the provider for a missing expiry, and `oauth status` shows no
// refresh that never happened.
import { afterAll, describe, expect, test } from "bun:test";
import { type TempHome, tempHome } from "../support/binary.ts";

const SLOW = 60_000;
const homes: TempHome[] = [];
afterAll(() => {
  for (const home of homes) home.cleanup();
});

describe("oauth paste without a refresh token", () => {
  test(
    "needs no token URL, says how long the token is used, and status shows no refresh",
    async () => {
      const home = await tempHome({ init: "password" });
      homes.push(home);
      const pasted = await home.run(["oauth", "paste", "GITHUB", "--access-token-stdin"], { stdin: "gho_pasted-access-token\n" });
      expect(pasted.code, pasted.stderr).toBe(0);
      expect(pasted.stderr).not.toMatch(/token URL|given by the provider/);
      expect(pasted.stderr).toMatch(/no refresh token: the access token is used until it expires or is replaced/);
      expect(pasted.stderr).not.toContain("gho_pasted-access-token");

      const status = JSON.parse((await home.run(["oauth", "status", "GITHUB", "--json"])).stdout) as Record<string, unknown>;
      expect(status).toMatchObject({ status: "connected", last_refresh: null, has_refresh_token: false, token_url: null });
      const text = await home.run(["oauth", "status", "GITHUB"]);
      expect(text.stdout).toMatch(/^last refresh +-$/m);
      const table = await home.run(["oauth", "status"]);
      expect(table.stdout.split("\n")[1]).toMatch(/^GITHUB +connected +- +- +- +-$/);

      // With --expires-in the expiry is the user's; without, nobody claims the provider gave none.
      const timed = await home.run(["oauth", "paste", "LINEAR", "--access-token-stdin", "--expires-in", "600"], { stdin: "lin_pasted\n" });
      expect(timed.code, timed.stderr).toBe(0);
      expect(timed.stderr).toMatch(/access token expires in 10m/);
    },
    SLOW,
  );
});
