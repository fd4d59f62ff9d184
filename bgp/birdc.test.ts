import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseShowBfdSessions, parseShowProtocols, sessionStatuses } from "./birdc.js";
import { ACTIVE, CONNECT, ESTABLISHED, PASSIVE } from "./birdc-support.js";
import type { RenderedProtocol } from "./render.js";

const MESH = "mesh_28a44c70d630";

describe("parseShowProtocols", () => {
  it("reads every protocol and the BGP details of an established session", () => {
    const ps = parseShowProtocols(ESTABLISHED);
    assert.deepEqual(
      ps.map((p) => [p.name, p.proto, p.state]),
      [
        ["device1", "Device", "up"],
        ["weft_direct", "Direct", "up"],
        ["weft_kernel4", "Kernel", "up"],
        ["weft_blocks4", "Static", "up"],
        [MESH, "BGP", "up"],
      ],
    );
    const bgp = ps.find((p) => p.name === MESH);
    assert.equal(bgp?.since, "2026-11-21 23:31:19");
    assert.equal(bgp?.info, "Established");
    assert.equal(bgp?.description, "b");
    assert.equal(bgp?.bgpState, "Established");
    assert.equal(bgp?.neighborAddress, "10.99.0.2");
    assert.equal(bgp?.neighborAS, 64512);
    assert.equal(bgp?.localAS, 64512);
    assert.deepEqual(bgp?.channels, [{ name: "ipv4", state: "UP", imported: 1, exported: 1, preferred: 1 }]);
    const kernel = ps.find((p) => p.name === "weft_kernel4");
    assert.equal(kernel?.table, "master4");
    assert.equal(kernel?.channels[0]?.exported, 1);
  });

  it("reads sessions that are not up, with the last error", () => {
    const active = parseShowProtocols(ACTIVE).find((p) => p.proto === "BGP");
    assert.equal(active?.state, "start");
    assert.equal(active?.bgpState, "Active");
    assert.equal(active?.lastError, "Socket: Connection refused");
    assert.equal(active?.info, "Active        Socket: Connection refused");
    assert.equal(active?.channels[0]?.state, "DOWN");
    assert.equal(active?.channels[0]?.imported, 0);
    const connect = parseShowProtocols(CONNECT).find((p) => p.proto === "BGP");
    assert.equal(connect?.bgpState, "Connect");
    const passive = parseShowProtocols(PASSIVE).find((p) => p.proto === "BGP");
    assert.equal(passive?.bgpState, "Passive");
    assert.equal(passive?.neighborAddress, "10.99.0.1");
    assert.equal(passive?.lastError, undefined);
  });

  it("reads the short `show protocols` table too", () => {
    const short = [
      "BIRD 2.0.12 ready.",
      "Name       Proto      Table      State  Since         Info",
      "device1    Device     ---        up     2026-11-21 23:31:18  ",
      `${MESH} BGP        ---        start  2026-11-21 23:31:24  Active        Socket: Connection refused`,
      "old        BGP        ---        down   23:31:24.123  ",
    ].join("\n");
    const ps = parseShowProtocols(short);
    assert.equal(ps.length, 3);
    assert.equal(ps[1]?.info, "Active        Socket: Connection refused");
    assert.equal(ps[2]?.since, "23:31:24.123");
    assert.equal(ps[2]?.state, "down");
  });

  it("ignores noise and empty input", () => {
    assert.deepEqual(parseShowProtocols(""), []);
    assert.deepEqual(parseShowProtocols("Unable to connect to server control socket (/x): No such file"), []);
  });
});

describe("sessionStatuses", () => {
  const rendered: RenderedProtocol[] = [
    {
      name: MESH,
      session: {
        peerName: "node-b",
        peerNode: "node-b",
        peerIP: "10.99.0.2",
        localIP: "10.99.0.1",
        family: 4,
        peerAS: 64512,
        localAS: 64512,
        kind: "mesh",
        passive: false,
        port: 179,
        source: "mesh",
      },
    },
  ];

  it("maps BIRD protocols to NodeNetworkStatus sessions with Weft's names", () => {
    const [s, ...rest] = sessionStatuses(parseShowProtocols(ESTABLISHED), rendered);
    assert.equal(rest.length, 0, "only BGP protocols");
    assert.equal(s?.peer, "node-b");
    assert.equal(s?.peerIP, "10.99.0.2");
    assert.equal(s?.asNumber, 64512);
    assert.equal(s?.state, "Established");
    assert.equal(s?.routesImported, 1);
    assert.equal(s?.routesExported, 1);
    assert.equal(s?.since, new Date("2026-11-21T23:31:19").toISOString());
    assert.equal(s?.info, undefined);
  });

  it("reports a down session's state and error, and BIRD's own names without a rendering", () => {
    const [s] = sessionStatuses(parseShowProtocols(ACTIVE));
    assert.equal(s?.peer, "b");
    assert.equal(s?.peerIP, "10.99.0.2");
    assert.equal(s?.state, "Active");
    assert.equal(s?.info, "Socket: Connection refused");
    assert.equal(s?.routesImported, 0);
  });

  it("skips BGP protocols that Weft did not render", () => {
    assert.deepEqual(sessionStatuses(parseShowProtocols(ESTABLISHED), []), []);
  });
});

describe("parseShowBfdSessions", () => {
  it("reads each neighbor's BFD state, as BIRD 2.0.12 prints it", () => {
    const text = [
      "BIRD 2.0.12 ready.",
      "weft_bfd:",
      "IP address                Interface  State      Since         Interval  Timeout",
      "10.0.0.2                  ---        Up         2026-12-03 17:15:09    0.100    0.300",
      "fd00::3                   eth0       Down       2026-12-03 17:15:15    1.000    0.000",
    ].join("\n");
    assert.deepEqual(parseShowBfdSessions(text), [
      { address: "10.0.0.2", state: "Up" },
      { address: "fd00::3", state: "Down" },
    ]);
    assert.deepEqual(parseShowBfdSessions("BIRD 2.0.12 ready.\nweft_bfd:\nIP address  Interface  State"), []);
  });
});
