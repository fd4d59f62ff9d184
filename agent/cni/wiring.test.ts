import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { encodeVethLinkinfo } from "./hostnet.js";
import { HOST_VETH_MAC, hostVethName, podHandle, podMac } from "./names.js";
import { buildResult, type PodWiring, podBatch, podProblems } from "./plan.js";
import { splitJSONArrays } from "./podns.js";

const w: PodWiring = {
  containerId: "c1",
  netns: "/var/run/netns/p",
  ifname: "eth0",
  hostVeth: hostVethName("c1"),
  podMac: podMac("c1", "eth0"),
  ips: ["10.0.0.7", "fd00::7"],
};

describe("names", () => {
  it("host veth is weft + 11 hex chars of sha256(sandbox id)", () => {
    // sha256("abc") = ba7816bf8f01cfea...
    assert.equal(hostVethName("abc"), "weftba7816bf8f0");
    assert.equal(hostVethName("abc").length, 15);
    assert.notEqual(hostVethName("abc", "net1"), hostVethName("abc"));
  });
  it("pod MAC is stable, unicast and locally administered", () => {
    const mac = podMac("c1", "eth0");
    assert.equal(mac, podMac("c1", "eth0"));
    assert.notEqual(mac, podMac("c2", "eth0"));
    const first = Number.parseInt(mac.slice(0, 2), 16);
    assert.equal(first & 0x03, 0x02);
    assert.equal(podHandle("c1", "eth0"), "c1.eth0");
  });
});

describe("plan", () => {
  it("pod batch replaces addresses, the permanent neighbor and the onlink default route", () => {
    const lines = podBatch(w).trim().split("\n");
    assert.ok(lines.includes("addr replace 10.0.0.7/32 dev eth0"));
    assert.ok(lines.includes("addr replace fd00::7/128 dev eth0 nodad"));
    assert.ok(lines.includes(`neigh replace 169.254.1.1 lladdr ${HOST_VETH_MAC} dev eth0 nud permanent`));
    assert.ok(lines.includes("route replace default via 169.254.1.1 dev eth0 onlink"));
    assert.ok(lines.includes("route replace default via fe80::ecee:eeff:feee:eeee dev eth0 onlink"));
    assert.ok(lines.every((l) => !l.startsWith("addr add") && !l.startsWith("route add")));
  });
  it("result names both ends and points IPs at the pod interface", () => {
    const r = buildResult(w, "1.0.0", { nameservers: ["10.96.0.10"] });
    assert.equal(r.interfaces?.[1]?.sandbox, w.netns);
    assert.deepEqual(
      r.ips?.map((i) => [i.address, i.interface]),
      [
        ["10.0.0.7/32", 1],
        ["fd00::7/128", 1],
      ],
    );
    assert.deepEqual(
      r.routes?.map((x) => x.dst),
      ["0.0.0.0/0", "::/0"],
    );
    assert.deepEqual(r.dns, { nameservers: ["10.96.0.10"] });
  });
  it("podProblems finds a missing route, address and neighbor", () => {
    const v4: PodWiring = { ...w, ips: ["10.0.0.7"] };
    const good = {
      addrs: [{ ifname: "eth0", flags: ["UP"], addr_info: [{ local: "10.0.0.7", prefixlen: 32 }] }],
      routes: [{ dst: "default", gateway: "169.254.1.1", dev: "eth0", flags: ["onlink"] }],
      neighbors: [{ dst: "169.254.1.1", lladdr: HOST_VETH_MAC, state: ["PERMANENT"] }],
    };
    assert.deepEqual(podProblems(v4, good), []);
    assert.match(podProblems(v4, { ...good, routes: [] }).join(), /default route/);
    assert.match(podProblems(v4, { ...good, neighbors: [] }).join(), /neighbor/);
    assert.match(
      podProblems(v4, { ...good, addrs: [{ ifname: "eth0", flags: ["UP"], addr_info: [] }] }).join(),
      /10\.0\.0\.7\/32/,
    );
    assert.match(podProblems(v4, { ...good, addrs: [] }).join(), /missing/);
  });
  it("splits iproute2's concatenated JSON arrays", () => {
    assert.deepEqual(splitJSONArrays('[{"a":"]"}]\n[]\n[{"b":[1,2]}]'), [[{ a: "]" }], [], [{ b: [1, 2] }]]);
  });
});

describe("veth linkinfo", () => {
  it("encodes kind veth and a peer with name, MAC, netns fd and MTU", () => {
    const b = encodeVethLinkinfo({
      hostName: "weftx",
      hostMac: HOST_VETH_MAC,
      peerName: "eth0",
      peerMac: "02:00:00:00:00:01",
      peerNetnsFd: 20,
      mtu: 1450,
    });
    // IFLA_INFO_KIND "veth\0"
    assert.equal(b.readUInt16LE(2), 1);
    assert.equal(b.subarray(4, 8).toString(), "veth");
    // IFLA_INFO_DATA > VETH_INFO_PEER > ifinfomsg (16) + attributes
    assert.equal(b.readUInt16LE(12 + 2), 2);
    assert.equal(b.readUInt16LE(16 + 2), 1);
    const peer = b.subarray(20 + 16);
    assert.equal(peer.readUInt16LE(2), 3); // IFLA_IFNAME
    assert.equal(peer.subarray(4, 8).toString(), "eth0");
    assert.ok(b.includes(Buffer.from([0x02, 0, 0, 0, 0, 1])));
    assert.equal(b.length % 4, 0);
  });
});
