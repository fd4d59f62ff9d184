import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type EndpointSliceLike, localLoadBalancerIngress, type ServiceLike } from "./services.js";

const svc = (name: string, policy: string, ips: string[], type = "LoadBalancer"): ServiceLike => ({
  metadata: { name, namespace: "web" },
  spec: { type, externalTrafficPolicy: policy },
  status: { loadBalancer: { ingress: ips.map((ip) => ({ ip })) } },
});
const slice = (
  service: string,
  endpoints: Array<[string, boolean | undefined]>,
  namespace = "web",
): EndpointSliceLike => ({
  metadata: { namespace, labels: { "kubernetes.io/service-name": service } },
  endpoints: endpoints.map(([nodeName, ready]) => ({
    nodeName,
    conditions: ready === undefined ? {} : { ready },
  })),
});

describe("LoadBalancer addresses a node announces", () => {
  const services = [
    svc("local", "Local", ["192.0.2.10", "2001:db8::0010"]),
    svc("cluster", "Cluster", ["192.0.2.11"]),
    svc("nodeport", "Local", ["192.0.2.12"], "NodePort"),
  ];
  const slices = [
    slice("local", [
      ["n1", true],
      ["n2", false],
      ["n3", undefined],
    ]),
    slice("cluster", [["n2", true]]),
    slice("nodeport", [["n2", true]]),
    slice("local", [["n2", true]], "other-namespace"),
  ];

  it("announces a Local policy Service only from nodes with a ready (or unknown) endpoint", () => {
    assert.deepEqual(localLoadBalancerIngress("n1", services, slices), ["192.0.2.10", "2001:db8::10"]);
    assert.deepEqual(localLoadBalancerIngress("n2", services, slices), []);
    assert.deepEqual(localLoadBalancerIngress("n3", services, slices), ["192.0.2.10", "2001:db8::10"]);
  });

  it("leaves Cluster policy Services to the range every Service node announces", () => {
    assert.ok(!localLoadBalancerIngress("n2", services, slices).includes("192.0.2.11"));
  });
});
