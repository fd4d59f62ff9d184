import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  failures,
  IcmpTracker,
  IN_FLIGHT_INTERVALS,
  type PathReport,
  type PathStats,
  splitLines,
  summarize,
  TcpTracker,
} from "./probe.js";
import { deletedBlockRoute, routeDestination } from "./routewatch.js";

const reply = (seq: number, t: number) =>
  `[${(t / 1000).toFixed(6)}] 64 bytes from 10.244.1.2: icmp_seq=${seq} ttl=63 time=0.1 ms`;

describe("ICMP bookkeeping", () => {
  it("counts a sequence number without a reply as lost once it is out of the in-flight window", () => {
    const t = new IcmpTracker(0);
    for (let n = 1; n <= 20; n++) if (n !== 7) t.onLine(reply(n, n * 200), n * 200);
    t.onLine("no answer yet for icmp_seq=7", 1500);
    const s = t.snapshot(4000);
    assert.equal(s.sent, 20 - IN_FLIGHT_INTERVALS);
    assert.equal(s.lost, 1);
    assert.equal(s.received, s.sent - 1);
    assert.equal(s.longestGapMs, 400, "the reply after the lost one came two intervals later");
  });

  it("settles every request once ping printed its summary", () => {
    const t = new IcmpTracker(0);
    for (let n = 1; n <= 10; n++) t.onLine(reply(n, n * 200), n * 200);
    t.onLine("12 packets transmitted, 10 received, 16% packet loss, time 2200ms", 2500);
    const s = t.snapshot(3000);
    assert.equal(s.sent, 12 - IN_FLIGHT_INTERVALS);
    assert.equal(s.lost, 0, "the two unanswered ones are within the in-flight window");
  });

  it("measures an ongoing outage as a gap until the summary", () => {
    const t = new IcmpTracker(0);
    t.onLine(reply(1, 1000), 1000);
    assert.equal(t.snapshot(6000).longestGapMs, 5000);
  });
});

describe("TCP bookkeeping", () => {
  it("counts a break only for a connection that was up, and the gap across it", () => {
    const t = new TcpTracker(0);
    t.onClose("ECONNREFUSED");
    t.onConnect();
    t.onEcho(100);
    t.onEcho(300);
    t.onClose("ECONNRESET");
    t.onConnect();
    t.onEcho(2300);
    t.stop(2400);
    const s = t.snapshot(10_000);
    assert.equal(s.breaks, 1);
    assert.equal(s.echoes, 3);
    assert.equal(s.longestGapMs, 2000);
    assert.equal(s.lastError, "ECONNRESET");
  });
});

function row(disturbed: boolean, icmpLost: number, tcpBreaks: number): PathReport {
  const stats: PathStats = {
    from: "10.244.1.2",
    to: "10.244.2.2",
    icmp: { sent: 100, received: 100 - icmpLost, lost: icmpLost, longestGapMs: 200 },
    tcp: { echoes: 100, breaks: tcpBreaks, up: true, longestGapMs: 300 },
  };
  return { fromNode: "a", toNode: "b", fromPod: "pa", toPod: "pb", stats, disturbed };
}

describe("scenario verdicts", () => {
  it("fail on loss or a broken flow between undisturbed nodes only", () => {
    assert.deepEqual(failures([row(false, 0, 0), row(true, 5, 1)]), []);
    assert.equal(failures([row(false, 1, 0)]).length, 1);
    assert.match(failures([row(false, 0, 2)])[0] ?? "", /broke 2 time/);
    const sum = summarize([row(false, 0, 0), row(true, 5, 1)]);
    assert.deepEqual(sum, { lost: 5, sent: 200, longestGapMs: 300, tcpBreaks: 1, lostUndisturbed: 0 });
  });
});

describe("route watch parsing", () => {
  it("reads the destination of plain, blackhole and deleted routes", () => {
    assert.equal(routeDestination("10.244.2.0/26 via 10.244.2.0 dev weft.vxlan onlink"), "10.244.2.0/26");
    assert.equal(routeDestination("blackhole 10.244.1.0/26 proto 252"), "10.244.1.0/26");
    assert.equal(routeDestination("Deleted 10.244.2.0/26 via 192.168.0.3 dev eth0"), "10.244.2.0/26");
    assert.equal(routeDestination("default via 192.168.0.1 dev eth0"), undefined);
  });

  it("records only deletions of watched blocks", () => {
    const blocks = new Set(["10.244.2.0/26"]);
    assert.equal(
      deletedBlockRoute("Deleted 10.244.2.0/26 via 10.244.2.0 dev weft.vxlan", blocks),
      "10.244.2.0/26",
    );
    assert.equal(deletedBlockRoute("10.244.2.0/26 via 10.244.2.0 dev weft.vxlan", blocks), undefined);
    assert.equal(deletedBlockRoute("Deleted 10.244.3.0/26 via 10.244.3.0 dev weft.vxlan", blocks), undefined);
  });

  it("splits a stream into whole lines and keeps the partial tail", () => {
    assert.deepEqual(splitLines("ab", "c\nde\n\nf"), { lines: ["abc", "de"], rest: "f" });
  });
});
