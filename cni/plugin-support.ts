/** What a container runtime hands a CNI plugin in the tests of the Node.js and the native plugin. */

/** The environment of a call for pod sandbox c1, ADD unless `over` says otherwise. */
export function podEnv(over: Record<string, string> = {}): Record<string, string> {
  return {
    CNI_COMMAND: "ADD",
    CNI_CONTAINERID: "c1",
    CNI_NETNS: "/var/run/netns/p1",
    CNI_IFNAME: "eth0",
    CNI_PATH: "/opt/cni/bin",
    ...over,
  };
}

/** The network configuration on stdin, pointing the plugin at the agent's socket. */
export function netconf(agentSocket: string, over: Record<string, unknown> = {}): string {
  return JSON.stringify({ cniVersion: "1.0.0", name: "weft", type: "weft", agentSocket, ...over });
}
