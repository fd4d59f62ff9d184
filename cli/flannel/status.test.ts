import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { flannelStatusRows } from "./status.js";

const vxlan = (ip: string, mac: string) =>
  JSON.stringify({ PublicIP: ip, BackendType: "vxlan", BackendData: { VNI: 1, VtepMAC: mac } });

describe("weftctl flannel status rows", () => {
  it("tells Weft's keys from flanneld's by their etcd lease, and says how long each lease lives", () => {
    const rows = flannelStatusRows(
      [
        { cidr: "10.244.1.0/24", value: vxlan("192.0.2.11", "aa:bb:cc:00:00:01"), lease: "100" },
        { cidr: "10.244.4.0/24", value: vxlan("192.0.2.14", "AA:BB:CC:00:00:04"), lease: "200" },
        { cidr: "10.244.5.0/24", value: vxlan("192.0.2.15", "aa:bb:cc:00:00:05"), lease: "300" },
        { cidr: "10.244.9.0/24", value: vxlan("192.0.2.99", "aa:bb:cc:00:00:09"), lease: "0" },
      ],
      "100",
      new Map([
        ["100", 86000],
        ["200", 42],
        ["300", -1],
      ]),
      new Map([
        ["192.0.2.11", "node-1"],
        ["192.0.2.14", "node-4"],
      ]),
    );
    assert.deepEqual(
      rows.map((r) => [r.subnet, r.node, r.runBy, r.vtepMAC, r.lease, r.ttl]),
      [
        ["10.244.1.0/24", "node-1", "weft-agent", "aa:bb:cc:00:00:01", "64", "86000s"],
        ["10.244.4.0/24", "node-4", "flanneld", "aa:bb:cc:00:00:04", "c8", "42s"],
        ["10.244.5.0/24", "-", "flanneld", "aa:bb:cc:00:00:05", "12c", "expired"],
        ["10.244.9.0/24", "-", "reservation", "aa:bb:cc:00:00:09", "-", "never expires"],
      ],
    );
  });

  it("with no record of Weft's lease every leased key is flanneld's", () => {
    const [row] = flannelStatusRows(
      [{ cidr: "10.244.1.0/24", value: "not json", lease: "7" }],
      undefined,
      new Map(),
      new Map(),
    );
    assert.equal(row?.runBy, "flanneld");
    assert.equal(row?.publicIP, "?");
    assert.equal(row?.ttl, "expired");
  });
});
