import * as k8s from "@kubernetes/client-node";

/**
 * Kubeconfig the way kubectl finds it: an explicit path, else $KUBECONFIG, else in-cluster service
 * account credentials, else ~/.kube/config.
 */
export function loadKubeConfig(path?: string): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  if (path) kc.loadFromFile(path);
  else if (process.env.KUBECONFIG) kc.loadFromFile(process.env.KUBECONFIG);
  else if (process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
  else kc.loadFromDefault();
  return kc;
}
