import { describe, expect, test } from "bun:test";
import { isForbiddenAddress, netguardOptionsFromEnv, resolveDial } from "../../src/proxy/netguard.ts";

const none = netguardOptionsFromEnv({});

describe("netguard", () => {
  test.each(["127.0.0.1", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "::1", "fd00::1", "fe80::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:7f00:1", "64:ff9b::a9fe:a9fe", "fd00:ec2::254"])(
    "blocks %s",
    (address) => expect(isForbiddenAddress(address, none.allowlist)).toBe(true),
  );

  test.each(["8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "::ffff:8.8.8.8", "::ffff:808:808"])("allows %s", (address) => expect(isForbiddenAddress(address, none.allowlist)).toBe(false));

  test("the allowlist exempts ranges", () => {
    const options = netguardOptionsFromEnv({ AGENT_VAULT_NETWORK_ALLOWLIST: "127.0.0.0/8, 10.0.0.0/8" });
    expect(isForbiddenAddress("127.0.0.1", options.allowlist)).toBe(false);
    expect(isForbiddenAddress("10.9.9.9", options.allowlist)).toBe(false);
    expect(isForbiddenAddress("192.168.0.1", options.allowlist)).toBe(true);
  });

  test("malformed settings are errors that name the entry", () => {
    expect(() => netguardOptionsFromEnv({ AGENT_VAULT_NETWORK_ALLOWLIST: "10.0.0.0/99" })).toThrow(/10\.0\.0\.0\/99/);
    expect(() => netguardOptionsFromEnv({ AGENT_VAULT_CONNECT_TO: "a.com:443" })).toThrow(/HOST1:PORT1:HOST2:PORT2/);
  });

  test("a name that resolves to loopback is refused; CONNECT_TO is operator intent", async () => {
    await expect(resolveDial("localhost", 443, none)).rejects.toMatchObject({ code: "forbidden_address" });
    await expect(resolveDial("127.0.0.1", 443, none)).rejects.toMatchObject({ code: "forbidden_address" });
    const options = netguardOptionsFromEnv({ AGENT_VAULT_CONNECT_TO: "api.github.com:443:127.0.0.1:8443" });
    expect(await resolveDial("API.GITHUB.COM", 443, options)).toEqual({ address: "127.0.0.1", port: 8443 });
    await expect(resolveDial("api.github.com", 8443, options)).rejects.toBeDefined();
  });
});
