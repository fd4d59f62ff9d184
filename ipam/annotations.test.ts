import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { IPPool, IPPoolSpec } from "../api/index.js";
import { checkPoolChoice, isIpamError, podIpamRequest } from "./index.js";

const pod = (annotations: Record<string, string> = {}) => ({ namespace: "web", name: "db-0", annotations });
const ns = (annotations: Record<string, string> = {}) => ({ name: "web", annotations });

function refused(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isIpamError(err, "InvalidAnnotation"), String(err));
    for (const p of patterns) assert.match(err.message, p);
    return true;
  });
}

describe("pod IPAM annotations", () => {
  it("reads pools per family, the pod's over the namespace's, and fixed addresses from the pod", () => {
    const r = podIpamRequest({
      pod: pod({
        "weft.dev/ipv4pools": '["blue", "green", "blue"]',
        "weft.dev/ip-addresses": '["10.9.0.7", "FD00:0:0::7"]',
      }),
      namespace: ns({ "weft.dev/ipv4pools": '["red"]', "weft.dev/ipv6pools": '["six"]' }),
    });
    assert.deepEqual(r.pools[4], {
      names: ["blue", "green"],
      source: "annotation weft.dev/ipv4pools of pod web/db-0",
      onPod: true,
    });
    assert.deepEqual(r.pools[6], {
      names: ["six"],
      source: "annotation weft.dev/ipv6pools of namespace web",
    });
    assert.deepEqual(r.addresses, { 4: "10.9.0.7", 6: "fd00::7" });
    assert.equal(r.addressSource, "annotation weft.dev/ip-addresses of pod web/db-0");
  });

  it("ignores a namespace annotation the pod overrides, even a broken one", () => {
    const r = podIpamRequest({
      pod: pod({ "weft.dev/ipv4pools": '["blue"]' }),
      namespace: ns({ "weft.dev/ipv4pools": "{not json" }),
    });
    assert.deepEqual(r.pools[4]?.names, ["blue"]);
  });

  it("refuses garbage JSON, non-lists, empty lists and bad names, naming the annotation and object", () => {
    refused(
      () => podIpamRequest({ pod: pod({ "weft.dev/ipv4pools": "[blue" }) }),
      /weft\.dev\/ipv4pools of pod web\/db-0 is not JSON/,
    );
    refused(
      () => podIpamRequest({ pod: pod(), namespace: ns({ "weft.dev/ipv6pools": '"six"' }) }),
      /weft\.dev\/ipv6pools of namespace web must be a JSON list of strings/,
    );
    refused(() => podIpamRequest({ pod: pod({ "weft.dev/ipv4pools": "[]" }) }), /empty list/);
    refused(
      () => podIpamRequest({ pod: pod({ "weft.dev/ipv4pools": '["Blue_Pool"]' }) }),
      /"Blue_Pool" is not a valid pool name/,
    );
  });

  it("refuses an address or network of the other family in a pools annotation, saying where it belongs", () => {
    refused(
      () => podIpamRequest({ pod: pod({ "weft.dev/ipv4pools": '["fd00::5"]' }) }),
      /"fd00::5" is an IPv6 address, not a pool name/,
      /weft\.dev\/ipv4pools names IPv4 pools \(IPv6 pools go in weft\.dev\/ipv6pools\)/,
    );
    refused(
      () => podIpamRequest({ pod: pod({ "weft.dev/ipv4pools": '["10.9.0.0/16"]' }) }),
      /"10\.9\.0\.0\/16" is an IPv4 network, not a pool name; name the pool that holds it/,
    );
  });

  it("refuses bad fixed addresses: not an address, a network, two of one family", () => {
    const where = /weft\.dev\/ip-addresses of pod web\/db-0/;
    refused(() => podIpamRequest({ pod: pod({ "weft.dev/ip-addresses": '["ten"]' }) }), where, /not an IPv4/);
    refused(
      () => podIpamRequest({ pod: pod({ "weft.dev/ip-addresses": '["10.9.0.0/24"]' }) }),
      where,
      /is a network/,
    );
    refused(
      () => podIpamRequest({ pod: pod({ "weft.dev/ip-addresses": '["10.9.0.1","10.9.0.2"]' }) }),
      where,
      /two IPv4 addresses \(10\.9\.0\.1, 10\.9\.0\.2\)/,
    );
  });
});

const pool = (name: string, spec: IPPoolSpec, extra: Partial<IPPool["metadata"]> = {}): IPPool => ({
  apiVersion: "weft.dev/v1alpha1",
  kind: "IPPool",
  metadata: { name, creationTimestamp: "2026-01-01T00:00:00Z", ...extra },
  spec,
});

describe("pool choice", () => {
  const pools = [
    pool("blue", { cidr: "10.1.0.0/16" }),
    pool("off", { cidr: "10.2.0.0/16", disabled: true }),
    pool("zoned", { cidr: "10.3.0.0/16", nodeSelector: { matchLabels: { zone: "b" } } }),
    pool("six", { cidr: "fd00:1::/64" }),
    pool("going", { cidr: "10.4.0.0/16" }, { deletionTimestamp: "2026-01-02T00:00:00Z" }),
    pool("shadow", { cidr: "10.1.0.0/20" }, { creationTimestamp: "2026-01-03T00:00:00Z" }),
  ];
  const node = { name: "n1", labels: { zone: "a" } };
  const choice = (...names: string[]) => ({ names, source: "annotation weft.dev/ipv4pools of pod web/db-0" });
  const why = (names: string[], pattern: RegExp) =>
    assert.throws(
      () => checkPoolChoice(choice(...names), 4, pools, node),
      (err: unknown) => {
        assert.ok(isIpamError(err, "PoolNotUsable"), String(err));
        assert.match(err.message, /^annotation weft\.dev\/ipv4pools of pod web\/db-0: /);
        assert.match(err.message, pattern);
        return true;
      },
    );

  it("accepts pools the node may use", () => {
    checkPoolChoice(choice("blue"), 4, pools, node);
  });

  it("names each pool that cannot be used and why; one bad pool fails the whole choice", () => {
    why(["missing"], /pool missing does not exist/);
    why(["blue", "off"], /pool off is disabled/);
    why(["zoned"], /pool zoned does not give addresses to node n1/);
    why(["six"], /pool six is an IPv6 pool \(fd00:1::\/64\); weft\.dev\/ipv4pools names IPv4 pools/);
    why(["going"], /pool going is being deleted/);
    why(["shadow"], /pool shadow overlaps the older pool\(s\) blue and is not used/);
  });
});
