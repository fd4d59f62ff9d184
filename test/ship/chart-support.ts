import { parseAllDocuments } from "yaml";

export { chartDir, type HelmResult, helm, helmTemplate, setArgs } from "../../devenv/helm.js";

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [k: string]: unknown;
}

/** The objects of a multi-document manifest (empty documents dropped). */
export function parseManifest(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null && typeof o === "object" && "kind" in o);
}
