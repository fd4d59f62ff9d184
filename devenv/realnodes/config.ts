/**
 * Configuration files of a real-node cluster: what containerd, the kubelet, kube-proxy, CoreDNS
 * and the apiserver's egress selector read, and the objects the control plane needs before nodes
 * join. Pure: paths and addresses in, text out.
 */

/** The cluster's Service range and the addresses in it that are fixed by convention. */
export const SERVICE_CIDR = "10.96.0.0/24";
export const KUBERNETES_SERVICE_IP = "10.96.0.1";
export const DNS_SERVICE_IP = "10.96.0.10";
export const CLUSTER_DOMAIN = "cluster.local";
/** The pod range: the default pool of Weft's chart (charts/weft/values.yaml), which the cluster installs unchanged. */
export const POD_CIDR = "10.244.0.0/16";

export interface NodePaths {
  /** The node's own directory; everything below is private to it. */
  dir: string;
  containerdSocket: string;
  containerdRoot: string;
  containerdState: string;
  runcRoot: string;
  kubeletRoot: string;
  kubeletCertDir: string;
  kubeletConfig: string;
  kubeletKubeconfig: string;
  proxyKubeconfig: string;
  containerdConfig: string;
  resolvConf: string;
  /** Directories bind-mounted over host paths inside the node's mount namespace. */
  binds: Array<{ source: string; target: string }>;
  /** Files holding the sysctl values the kubelet expects, bind-mounted over /proc/sys. */
  sysctlFiles: Array<{ source: string; target: string; value: string }>;
}

/**
 * The values kubelet's setupKernelTunables insists on. Without these files over /proc/sys, a
 * kubelet rewrites them for the whole machine.
 */
export const KUBELET_SYSCTLS: Record<string, string> = {
  "vm/overcommit_memory": "1",
  "kernel/panic": "10",
  "kernel/panic_on_oops": "1",
};

/** Host paths every node sees as its own (standard places, so the chart's defaults apply). */
export const NODE_PRIVATE_PATHS = [
  "/etc/cni/net.d",
  "/opt/cni/bin",
  "/var/run/netns",
  "/var/run/weft",
  "/var/log/pods",
  "/var/log/containers",
  "/var/lib/kubelet",
];

export function nodePaths(dir: string): NodePaths {
  const p = (...parts: string[]) => [dir, ...parts].join("/");
  return {
    dir,
    containerdSocket: p("containerd.sock"),
    containerdRoot: p("containerd", "root"),
    containerdState: p("containerd", "state"),
    runcRoot: p("runc"),
    kubeletRoot: "/var/lib/kubelet",
    kubeletCertDir: p("kubelet-pki"),
    kubeletConfig: p("kubelet.yaml"),
    kubeletKubeconfig: p("kubelet.kubeconfig"),
    proxyKubeconfig: p("kube-proxy.kubeconfig"),
    containerdConfig: p("containerd.toml"),
    resolvConf: p("resolv.conf"),
    binds: [
      ...NODE_PRIVATE_PATHS.map((target) => ({ source: p("host", target.replace(/^\//, "")), target })),
      { source: p("resolv.conf"), target: "/etc/resolv.conf" },
    ],
    sysctlFiles: Object.entries(KUBELET_SYSCTLS).map(([k, value]) => ({
      source: p("sysctl", k.replace("/", ".")),
      target: `/proc/sys/${k}`,
      value,
    })),
  };
}

/** containerd 1.6 (config version 2) for one node: its own root, state, socket, runc root and CNI dirs. */
export function containerdConfig(paths: NodePaths, sandboxImage: string): string {
  return `version = 2
root = "${paths.containerdRoot}"
state = "${paths.containerdState}"
# no CAP_SYS_RESOURCE here: never lower an OOM score
oom_score = 0
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "${paths.containerdSocket}"

[ttrpc]
  address = "${paths.containerdSocket}.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "${paths.dir}/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${sandboxImage}"
  restrict_oom_score_adj = true
  # pod network namespaces under /var/run/netns, which is private to the node's mount namespace
  netns_mounts_under_state_dir = false
  enable_selinux = false
  disable_apparmor = true
  max_container_log_line_size = 16384

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    discard_unpacked_layers = false

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "${paths.runcRoot}"
        SystemdCgroup = false

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/opt/cni/bin"
    conf_dir = "/etc/cni/net.d"
    max_conf_num = 1
`;
}

export interface KubeletOptions {
  nodeName: string;
  nodeIP: string;
  /** A cgroup path that exists in every v1 hierarchy, e.g. /weft-rn-1234-node-1. */
  cgroupRoot: string;
  clientCAFile: string;
}

/** KubeletConfiguration for a node inside a namespace on a machine shared with others. */
export function kubeletConfig(paths: NodePaths, o: KubeletOptions): string {
  return `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://${paths.containerdSocket}
cgroupDriver: cgroupfs
cgroupRoot: ${o.cgroupRoot}
cgroupsPerQOS: true
# nothing reserved or enforced: the machine's resources are shared with the other nodes
enforceNodeAllocatable: []
failSwapOn: false
localStorageCapacityIsolation: false
evictionHard:
  memory.available: "0%"
  nodefs.available: "0%"
  nodefs.inodesFree: "0%"
  imagefs.available: "0%"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
# no CAP_SYS_RESOURCE: keep the kubelet's own OOM score
oomScoreAdj: 0
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: false
  x509:
    clientCAFile: ${o.clientCAFile}
authorization:
  mode: AlwaysAllow
address: ${o.nodeIP}
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
clusterDNS:
  - ${DNS_SERVICE_IP}
clusterDomain: ${CLUSTER_DOMAIN}
resolvConf: ${paths.resolvConf}
serializeImagePulls: false
registerNode: true
maxPods: 110
rotateCertificates: false
serverTLSBootstrap: false
protectKernelDefaults: false
makeIPTablesUtilChains: true
`;
}

/** kube-proxy flags: iptables mode, and nothing that writes the machine's global conntrack sysctls. */
export function kubeProxyArgs(paths: NodePaths, nodeName: string, nodeIP: string): string[] {
  return [
    `--kubeconfig=${paths.proxyKubeconfig}`,
    `--hostname-override=${nodeName}`,
    `--bind-address=${nodeIP}`,
    "--proxy-mode=iptables",
    "--oom-score-adj=0",
    "--conntrack-max-per-core=0",
    "--conntrack-min=0",
    "--conntrack-tcp-timeout-established=0",
    "--conntrack-tcp-timeout-close-wait=0",
    "--metrics-bind-address=127.0.0.1:10249",
    "--healthz-bind-address=127.0.0.1:10256",
    "--v=1",
  ];
}

/** A kubeconfig with a client certificate (file paths, so rotation-free and readable in logs). */
export function certKubeconfig(server: string, ca: string, cert: string, key: string, user: string): string {
  return `apiVersion: v1
kind: Config
clusters:
- name: weft
  cluster:
    server: ${server}
    certificate-authority: ${ca}
users:
- name: ${user}
  user:
    client-certificate: ${cert}
    client-key: ${key}
contexts:
- name: weft
  context: {cluster: weft, user: ${user}}
current-context: weft
`;
}

/**
 * The apiserver's egress selector: its connections to kubelets (logs, exec, port-forward) go
 * through an HTTP CONNECT proxy on a unix socket, which dials from inside the underlay namespace.
 */
export function egressSelectorConfig(socket: string): string {
  return `apiVersion: apiserver.k8s.io/v1beta1
kind: EgressSelectorConfiguration
egressSelections:
- name: cluster
  connection:
    proxyProtocol: HTTPConnect
    transport:
      uds:
        udsName: ${socket}
`;
}

/**
 * CoreDNS answers for the cluster domain only. It has no `forward`: a name outside the cluster
 * gets SERVFAIL instead of a query to the machine's resolver.
 */
export function corefile(listenIP: string, kubeconfig: string): string {
  return `${CLUSTER_DOMAIN}:53 in-addr.arpa:53 ip6.arpa:53 {
    bind ${listenIP}
    errors
    health ${listenIP}:8080
    ready ${listenIP}:8181
    kubernetes ${CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {
        kubeconfig ${kubeconfig}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    cache 30
    loadbalance
}
.:53 {
    bind ${listenIP}
    errors
    template ANY ANY {
        rcode SERVFAIL
    }
}
`;
}

/**
 * Objects the control plane needs before nodes join: RBAC for kubelets (there is no Node
 * authorizer) and kube-proxy, and kube-dns as a Service without selector whose endpoint is the
 * CoreDNS process on the underlay.
 */
export function bootstrapManifests(dnsIP: string): string {
  return `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: weft-devenv:nodes
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:node"}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: "system:nodes"}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: weft-devenv:kube-proxy
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:node-proxier"}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:kube-proxy"}
---
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns, kubernetes.io/name: CoreDNS}
spec:
  clusterIP: ${DNS_SERVICE_IP}
  ports:
  - {name: dns, port: 53, protocol: UDP, targetPort: 53}
  - {name: dns-tcp, port: 53, protocol: TCP, targetPort: 53}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kube-dns-devenv
  namespace: kube-system
  labels: {kubernetes.io/service-name: kube-dns, endpointslice.kubernetes.io/managed-by: weft-devenv}
addressType: IPv4
endpoints:
- addresses: ["${dnsIP}"]
  conditions: {ready: true}
ports:
- {name: dns, port: 53, protocol: UDP}
- {name: dns-tcp, port: 53, protocol: TCP}
`;
}
