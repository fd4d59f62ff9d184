import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type FrrRouter, startFrr } from "../../devenv/containers/frr.js";
import { CONTAINERS_ENV, containersMode } from "../../devenv/containers/mode.js";
import { containerPid, netnsInode, testEngine } from "../../devenv/containers/start.js";
import { startDetached, stopPid, waitFor } from "../../devenv/procs.js";
import { ip, nsExec, requireRoot } from "../../devenv/topology.js";

/**
 * FRR through testcontainers, inside a network namespace this test made: it peers over a veth
 * with GoBGP in a second namespace, learns GoBGP's route and zebra installs it into its own
 * namespace's kernel (and nowhere else).
 */
const off = containersMode() === "off";

describe("FRR through testcontainers in a test's namespace", {
  skip: off && `${CONTAINERS_ENV}=off: FRR runs only as a container`,
}, () => {
  requireRoot("the FRR container test");
  for (const cmd of ["gobgpd", "gobgp"]) {
    try {
      execFileSync(cmd, ["--version"], { stdio: "pipe" });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT")
        assert.fail(`${cmd} not found: apt-get install gobgpd`);
    }
  }

  const prefix = `wfrr${process.pid}`;
  const frrNs = `${prefix}-frr`;
  const gobgpNs = `${prefix}-gobgp`;
  const FRR_IP = "198.51.100.1";
  const GOBGP_IP = "198.51.100.2";
  const ROUTE = "203.0.113.0/24";
  const dir = mkdtempSync(join(tmpdir(), `weft-${prefix}-`));
  let frr: FrrRouter | undefined;
  let gobgpd = 0;

  before(async () => {
    for (const ns of [frrNs, gobgpNs]) {
      await ip(["netns", "add", ns]);
      await ip(["-n", ns, "link", "set", "lo", "up"]);
    }
    await ip(["-n", frrNs, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", gobgpNs]);
    for (const [ns, addr] of [
      [frrNs, FRR_IP],
      [gobgpNs, GOBGP_IP],
    ] as const) {
      await ip(["-n", ns, "addr", "add", `${addr}/24`, "dev", "eth0"]);
      await ip(["-n", ns, "link", "set", "eth0", "up"]);
    }
    const conf = join(dir, "gobgpd.toml");
    writeFileSync(
      conf,
      [
        "[global.config]",
        "  as = 65020",
        `  router-id = "${GOBGP_IP}"`,
        `  local-address-list = ["${GOBGP_IP}"]`,
        "[[neighbors]]",
        "  [neighbors.config]",
        `    neighbor-address = "${FRR_IP}"`,
        "    peer-as = 65010",
        "",
      ].join("\n"),
    );
    // The API listens on the namespace's own loopback.
    gobgpd = startDetached(
      "ip",
      ["netns", "exec", gobgpNs, "gobgpd", "-f", conf, "--api-hosts", "127.0.0.1:50051", "--pprof-disable"],
      join(dir, "gobgpd.log"),
    ).pid;
    frr = await startFrr({
      netns: frrNs,
      config: [
        "frr defaults traditional",
        "router bgp 65010",
        ` bgp router-id ${FRR_IP}`,
        " no bgp ebgp-requires-policy",
        ` neighbor ${GOBGP_IP} remote-as 65020`,
        ` neighbor ${GOBGP_IP} timers connect 1`,
      ].join("\n"),
    });
  });

  after(async () => {
    await frr?.stop();
    if (gobgpd) await stopPid(gobgpd);
    for (const ns of [frrNs, gobgpNs]) await ip(["netns", "del", ns]).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  it("runs in the namespace the test gave it, and asks no DNS resolver but loopback", async () => {
    const pid = await containerPid(testEngine(), frr!.id);
    assert.equal(netnsInode(`/proc/${pid}/ns/net`), netnsInode(`/run/netns/${frrNs}`));
    assert.notEqual(netnsInode(`/proc/${pid}/ns/net`), netnsInode("/proc/self/ns/net"));
    const links = JSON.parse(await ip(["-n", frrNs, "-json", "addr", "show", "dev", "eth0"])) as Array<{
      addr_info: Array<{ local: string }>;
    }>;
    assert.ok(links[0]?.addr_info.some((a) => a.local === FRR_IP));
    const resolv = await frr!
      .vtysh("show running-config")
      .then(() => readInContainer(frr!, "/etc/resolv.conf"));
    assert.deepEqual(
      resolv
        .split("\n")
        .filter((l) => l.startsWith("nameserver"))
        .map((l) => l.split(/\s+/)[1]),
      ["127.0.0.1"],
    );
  });

  it("peers with GoBGP in another namespace, learns its route and installs it in its own namespace only", async () => {
    await nsExec(gobgpNs, "gobgp", ["-p", "50051", "global", "rib", "add", "-a", "ipv4", ROUTE]);
    const session = await waitFor(
      "FRR's session with GoBGP Established",
      async () => {
        const s = await frr!.vtyshJson<{
          ipv4Unicast?: { peers?: Record<string, { state: string; pfxRcd?: number }> };
        }>("show bgp summary json");
        const p = s.ipv4Unicast?.peers?.[GOBGP_IP];
        return p?.state === "Established" && (p.pfxRcd ?? 0) >= 1 ? p : undefined;
      },
      60_000,
      250,
    );
    assert.equal(session.pfxRcd, 1);
    const route = await frr!.vtyshJson<{
      paths: Array<{ aspath: { string: string }; nexthops: Array<{ ip: string }> }>;
    }>(`show bgp ipv4 unicast ${ROUTE} json`);
    assert.equal(route.paths[0]?.aspath.string, "65020");
    assert.equal(route.paths[0]?.nexthops[0]?.ip, GOBGP_IP);
    const kernel = await waitFor(
      "zebra to install the route in FRR's namespace",
      async () => {
        const r = JSON.parse(await ip(["-n", frrNs, "-json", "route", "show", ROUTE])) as Array<{
          gateway?: string;
          protocol?: string;
        }>;
        return r[0];
      },
      30_000,
      250,
    );
    assert.equal(kernel.gateway, GOBGP_IP);
    assert.equal(kernel.protocol, "bgp");
    assert.equal(
      (await ip(["route", "show", ROUTE])).trim(),
      "",
      "the machine's own routing table is untouched",
    );
  });
});

/** A file as the container's own processes see it. */
async function readInContainer(router: FrrRouter, path: string): Promise<string> {
  const pid = await containerPid(testEngine(), router.id);
  return readFileSync(`/proc/${pid}/root${path}`, "utf8");
}
