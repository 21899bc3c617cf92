import { describe, expect, test } from "bun:test";
import { networkInterfaces } from "node:os";
import { isForbiddenAddress, netguardOptionsFromEnv, parseHostAddress, resolveDial } from "../../src/net/netguard.ts";

const none = netguardOptionsFromEnv({});

/** The machine's own addresses that no range covers by itself (e.g. a public eth0 address). */
const ownAddresses = Object.values(networkInterfaces())
  .flatMap((entries) => entries ?? [])
  .filter((e) => !e.internal)
  .map((e) => e.address);

describe("netguard", () => {
  test.each([
    // the IPv4 special-purpose registry, multicast and reserved, at both ends of each range
    "0.0.0.0",
    "0.255.255.255",
    "10.1.2.3",
    "100.64.0.1",
    "100.127.255.255",
    "127.0.0.1",
    "127.255.255.254",
    "169.254.169.254",
    "172.16.0.1",
    "172.31.255.255",
    "192.0.0.9",
    "192.0.0.170",
    "192.0.2.1",
    "192.0.2.255",
    "192.31.196.1",
    "192.52.193.1",
    "192.88.99.1",
    "192.168.1.1",
    "192.175.48.1",
    "198.18.0.1",
    "198.19.255.255",
    "198.51.100.7",
    "203.0.113.9",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    // IPv6: unspecified, loopback, everything outside 2000::/3, and the registry inside it
    "::",
    "::1",
    "::127.0.0.1",
    "::ffff:0:127.0.0.1",
    "100::1",
    "100:0:0:1::1",
    "5f00::1",
    "fc00::1",
    "fd00::1",
    "fd00:ec2::254",
    "fe80::1",
    "fec0::1",
    "ff02::1",
    "2001::1",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    "2001:2::1",
    "2001:1ff:ffff::1",
    "2001:db8::1",
    "2001:db8:ffff::1",
    "2620:4f:8000::1",
    "3fff::1",
    "3fff:fff:ffff::1",
    // IPv6 forms that carry a forbidden IPv4 address
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:7f00:1",
    "::FFFF:C000:0201",
    "::ffff:192.0.2.2",
    "64:ff9b::a9fe:a9fe",
    "64:ff9b::127.0.0.1",
    "64:ff9b:1::808:808",
    "2002:7f00:1::1",
    "2002:c000:0201::",
    "2002:0a00:0001:1234::1",
    // zone ids and garbage
    "fe80::1%eth0",
    "2606:4700::1111%1",
    "not-an-address",
    "",
  ])("blocks %s", (address) => expect(isForbiddenAddress(address, none.allowlist)).toBe(true));

  test.each([
    "8.8.8.8",
    "1.1.1.1",
    "172.32.0.1",
    "100.128.0.1",
    "192.0.1.255",
    "192.0.3.0",
    "198.20.0.1",
    "198.51.99.255",
    "203.0.112.255",
    "223.255.255.255",
    "2606:4700::1111",
    "2a00:1450:4001:80b::200e",
    "2001:200::1",
    "2001:db9::1",
    "::ffff:8.8.8.8",
    "::ffff:808:808",
    "64:ff9b::8.8.8.8",
    "2002:0808:0808::1",
  ])("allows %s", (address) => expect(isForbiddenAddress(address, none.allowlist)).toBe(false));

  test("every address of this machine's own interfaces is refused", () => {
    for (const address of ownAddresses) expect(isForbiddenAddress(address, none.allowlist)).toBe(true);
  });

  test("the allowlist exempts ranges", () => {
    const options = netguardOptionsFromEnv({ AGENT_VAULT_NETWORK_ALLOWLIST: "127.0.0.0/8, 10.0.0.0/8, 2001:db8::/32" });
    expect(isForbiddenAddress("127.0.0.1", options.allowlist)).toBe(false);
    expect(isForbiddenAddress("10.9.9.9", options.allowlist)).toBe(false);
    expect(isForbiddenAddress("2001:db8::1", options.allowlist)).toBe(false);
    expect(isForbiddenAddress("192.168.0.1", options.allowlist)).toBe(true);
  });

  test("malformed settings are errors that name the entry", () => {
    expect(() => netguardOptionsFromEnv({ AGENT_VAULT_NETWORK_ALLOWLIST: "10.0.0.0/99" })).toThrow(/10\.0\.0\.0\/99/);
    expect(() => netguardOptionsFromEnv({ AGENT_VAULT_NETWORK_ALLOWLIST: "fe80::1%eth0" })).toThrow(/fe80::1%eth0/);
    expect(() => netguardOptionsFromEnv({ AGENT_VAULT_CONNECT_TO: "a.com:443" })).toThrow(/HOST1:PORT1:HOST2:PORT2/);
  });

  test.each([
    ["2130706433", "127.0.0.1"],
    ["0177.0.0.1", "127.0.0.1"],
    ["0x7f.1", "127.0.0.1"],
    ["0x7F000001", "127.0.0.1"],
    ["017700000001", "127.0.0.1"],
    ["127.1", "127.0.0.1"],
    ["127.0.1", "127.0.0.1"],
    ["127.0.0.1.", "127.0.0.1"],
    ["0", "0.0.0.0"],
    ["0x", "0.0.0.0"],
    ["3221225986", "192.0.2.2"],
    ["0xc0.0.0x2.02", "192.0.2.2"],
    ["1.2.3", "1.2.0.3"],
    ["[::1]", "::1"],
    ["[::ffff:127.0.0.1]", "::ffff:127.0.0.1"],
  ])("%s is read as %s", (host, address) => expect(parseHostAddress(host)).toEqual({ address }));

  test.each(["fe80::1%25eth0", "[fe80::1%eth0]", "08.0.0.1", "1.2.3.4.5", "256.0.0.1", "1.2.3.256", "1.2.65536", "4294967296", "1..2", "evil.127", "foo.0x7f"])(
    "%s is refused as an address that means no one address",
    (host) => expect(() => parseHostAddress(host)).toThrow(expect.objectContaining({ code: "forbidden_address" })),
  );

  test.each(["api.github.com", "1e3", "example.com.", "0x7f.example"])("%s is a name", (host) => expect("name" in parseHostAddress(host)).toBe(true));

  test("a name that resolves to loopback is refused; CONNECT_TO is operator intent", async () => {
    await expect(resolveDial("localhost", 443, none)).rejects.toMatchObject({ code: "forbidden_address" });
    await expect(resolveDial("127.0.0.1", 443, none)).rejects.toMatchObject({ code: "forbidden_address" });
    const options = netguardOptionsFromEnv({ AGENT_VAULT_CONNECT_TO: "api.github.com:443:127.0.0.1:8443" });
    expect(await resolveDial("API.GITHUB.COM", 443, options)).toEqual({ address: "127.0.0.1", port: 8443 });
    await expect(resolveDial("api.github.com", 8443, options)).rejects.toBeDefined();
  });

  test.each(["2130706433", "0177.0.0.1", "0x7f.1", "127.1", "[::1]", "[::ffff:7f00:1]", "::ffff:127.0.0.1", "fe80::1%lo", "0"])("resolveDial refuses %s", async (host) => {
    await expect(resolveDial(host, 443, none)).rejects.toMatchObject({ code: "forbidden_address" });
  });

  test("the machine's own addresses are refused in every spelling", async () => {
    for (const address of ownAddresses.filter((a) => !a.includes(":"))) {
      const [a, b, c, d] = address.split(".").map(Number) as [number, number, number, number];
      const decimal = String(((a << 24) >>> 0) + (b << 16) + (c << 8) + d);
      for (const host of [address, `::ffff:${address}`, `[::ffff:${address}]`, decimal, `0x${a.toString(16)}.${b}.${c}.${d}`, `0${a.toString(8)}.${b}.${c}.${d}`]) {
        await expect(resolveDial(host, 443, none)).rejects.toMatchObject({ code: "forbidden_address" });
      }
    }
  });

  test("a public literal is dialled as written, a numeric spelling as the address it means", async () => {
    expect(await resolveDial("8.8.8.8", 443, none)).toEqual({ address: "8.8.8.8", port: 443 });
    expect(await resolveDial("134744072", 443, none)).toEqual({ address: "8.8.8.8", port: 443 });
  });
});
