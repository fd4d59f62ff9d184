import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { REAL_NODE_MODES, type RealNodeMode } from "../../devenv/realnodes/workload.js";
import { FaultRig, reliabilityRows, type ScenarioResult } from "./faults-support.js";
import { readSysctls } from "./leftovers.js";

/**
 * Faults on real nodes under continuous pod traffic (ICMP and a held TCP connection on every
 * path between pods on different nodes): Weft upgraded by `helm upgrade` from the previous
 * release's chart and image, then the apiserver and etcd stopped while one agent and the
 * controller leader crash and come back. No packet between pods may be lost, no route to another
 * node's pods may leave a kernel, and afterwards every NodeNetworkStatus is Ready and `weftctl
 * ipam check` is clean.
 *
 * `make test` runs the short version (2 nodes, vxlan, a 60 s outage); `make chaos`
 * (WEFT_FAULTS=long) the long one: 3 nodes, a 120 s outage and the upgrade in every mode, then
 * a value change that re-renders every agent. WEFT_UPGRADE_FROM names the release to upgrade
 * from (default: main before its last merge).
 */
const long = process.env.WEFT_FAULTS === "long";
const nodes = long ? 3 : 2;
const outageSeconds = long ? 120 : 60;
const modes: RealNodeMode[] = long ? [...REAL_NODE_MODES] : ["vxlan"];
const results: ScenarioResult[] = [];
const sysctlsBefore = readSysctls();

function assertClean(r: ScenarioResult): void {
  assert.deepEqual(r.failures, [], `${r.scenario} (mode ${r.mode}):\n${r.failures.join("\n")}`);
}

for (const [i, mode] of modes.entries()) {
  describe(`faults on ${nodes} real nodes, mode ${mode}`, () => {
    const id = `rf${process.pid.toString(36)}${i}`;
    let rig: FaultRig | undefined;
    let leftBehind: string[] = [];

    before(async () => {
      rig = await FaultRig.start({ id, mode, nodes, fromPrevious: true });
    });

    after(async () => {
      leftBehind = (await rig?.destroy()) ?? [];
      assert.deepEqual(leftBehind, [], `cluster ${id} left things behind`);
    });

    test("helm upgrade from the previous release replaces every agent without a lost packet", async () => {
      const r = await rig!.upgrade();
      results.push(r);
      assertClean(r);
    });

    if (long || i === 0)
      test(`apiserver and etcd down ${outageSeconds} s, an agent and the controller leader restarted inside: no lost packet, converged after`, async () => {
        const r = await rig!.outage(outageSeconds);
        results.push(r);
        assertClean(r);
      });

    if (long)
      test("helm upgrade with a changed value re-renders every agent without a lost packet", async () => {
        const r = await rig!.valueChange();
        results.push(r);
        assertClean(r);
      });
  });
}

after(() => {
  assert.deepEqual(readSysctls(), sysctlsBefore, "host sysctls changed");
  if (results.length) {
    console.log("# reliability (README table rows):");
    for (const row of reliabilityRows(results)) console.log(`# ${row}`);
  }
});
