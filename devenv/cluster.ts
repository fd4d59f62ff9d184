import { readFileSync } from "node:fs";
import * as k8s from "@kubernetes/client-node";
import { withConnectionReuse } from "../lib/index.js";
import { type ControlPlaneState, kubectl } from "./controlplane.js";

/** Environment variable through which the suite runner hands its control plane to test files. */
export const STATE_ENV = "WEFT_TEST_CONTROLPLANE";

export interface TestCluster {
  state: ControlPlaneState;
  kubeconfig: string;
  kc: k8s.KubeConfig;
  /** Runs the harness-built kubectl against this cluster. */
  kubectl(args: string[], input?: string): Promise<string>;
}

/**
 * The control plane shared by every integration test file of this run. Test files never start
 * their own: the runner (make test) or `make cluster-up` does, and says where it is.
 */
export function testCluster(): TestCluster {
  const path = process.env[STATE_ENV];
  if (!path) {
    throw new Error(
      `${STATE_ENV} is not set: integration tests need the real apiserver. Run them with 'make test', ` +
        `or 'make cluster-up' and then ${STATE_ENV}=.weft/cluster/state.json node --test dist/test/integration/...`,
    );
  }
  const state = JSON.parse(readFileSync(path, "utf8")) as ControlPlaneState;
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(state.kubeconfig);
  withConnectionReuse(kc);
  return {
    state,
    kubeconfig: state.kubeconfig,
    kc,
    kubectl: (args, input) => kubectl(state.kubeconfig, args, input),
  };
}
