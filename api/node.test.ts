import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { underlayAddresses, vtepMAC } from "./node.js";

const node = (annotation: string | undefined, ...internal: string[]) => ({
  metadata: annotation === undefined ? {} : { annotations: { "weft.dev/underlay-ip": annotation } },
  status: { addresses: internal.map((address) => ({ type: "InternalIP", address })) },
});

describe("underlayAddresses", () => {
  it("takes the annotation over the InternalIPs, per family", () => {
    assert.deepEqual(underlayAddresses(node("198.51.100.7", "192.0.2.7", "fd00::7")), {
      4: "198.51.100.7",
      6: "fd00::7",
      problems: [],
    });
    assert.deepEqual(underlayAddresses(node(undefined, "192.0.2.7")), { 4: "192.0.2.7", problems: [] });
    assert.deepEqual(underlayAddresses({ status: { addresses: [{ type: "Hostname", address: "x" }] } }), {
      problems: [],
    });
  });

  it("splits a comma-separated dual-stack annotation by family, in canonical form", () => {
    assert.deepEqual(underlayAddresses(node("FD00:0::1, 198.51.100.7", "192.0.2.7")), {
      4: "198.51.100.7",
      6: "fd00::1",
      problems: [],
    });
  });

  it("reports garbage and a second address of one family, and uses neither", () => {
    const u = underlayAddresses(node("198.51.100.7/24,not-an-ip,198.51.100.8,198.51.100.9", "192.0.2.7"));
    assert.equal(u[4], "198.51.100.8");
    assert.equal(u[6], undefined);
    assert.equal(u.problems.length, 3);
    assert.match(u.problems[0] ?? "", /"198\.51\.100\.7\/24" is not an IP address/);
    assert.match(u.problems[1] ?? "", /"not-an-ip" is not an IP address/);
    assert.match(u.problems[2] ?? "", /198\.51\.100\.9 is a second IPv4 address; using 198\.51\.100\.8/);
    assert.deepEqual(underlayAddresses(node("garbage", "192.0.2.7"))[4], "192.0.2.7");
  });
});

describe("vtepMAC", () => {
  it("is stable, unicast and locally administered", () => {
    const a = vtepMAC("node-a");
    assert.equal(a, vtepMAC("node-a"));
    assert.match(a, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    const first = Number.parseInt(a.slice(0, 2), 16);
    assert.equal(first & 0x01, 0, "multicast bit clear");
    assert.equal(first & 0x02, 0x02, "locally administered bit set");
  });

  it("differs between nodes", () => {
    const macs = new Set(Array.from({ length: 1000 }, (_, i) => vtepMAC(`node-${i}`)));
    assert.equal(macs.size, 1000);
  });
});
