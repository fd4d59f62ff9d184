import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

export interface Certs {
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  adminCert: string;
  adminKey: string;
  saKey: string;
  saPub: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
}

const LEAF_BASE = "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n";
/** X.509 extensions of a client certificate. */
export const CLIENT_EXT = `${LEAF_BASE}extendedKeyUsage=clientAuth\n`;
/** X.509 extensions of a serving certificate for the given subjectAltNames. */
export const serverExt = (sans: string[]) =>
  `${LEAF_BASE}extendedKeyUsage=serverAuth\nsubjectAltName=${sans.join(",")}\n`;

/** A self-signed P-256 CA in `dir` (ca.key, ca.crt). */
export function makeCA(dir: string, commonName: string): void {
  openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key"], dir);
  openssl(
    [
      "req",
      "-x509",
      "-new",
      "-key",
      "ca.key",
      "-subj",
      `/CN=${commonName}`,
      "-days",
      "3650",
      "-out",
      "ca.crt",
    ],
    dir,
  );
}

/** A P-256 leaf NAME.crt/NAME.key signed by the CA in `dir` (made by makeCA). */
export function signLeaf(
  dir: string,
  name: string,
  subject: string,
  extensions: string,
): { cert: string; key: string } {
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, extensions);
  openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", `${name}.key`], dir);
  openssl(["req", "-new", "-key", `${name}.key`, "-subj", subject, "-out", `${name}.csr`], dir);
  openssl(
    [
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-days",
      "3650",
    ].concat(["-extfile", ext, "-out", `${name}.crt`]),
    dir,
  );
  return { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
}

/** A client certificate signed by the CA in `dir` (made by makeCerts), e.g. a node's system:node:NAME. */
export function clientCert(dir: string, name: string, subject: string): { cert: string; key: string } {
  return signLeaf(dir, name, subject, CLIENT_EXT);
}

/**
 * A throwaway PKI for one control plane: a CA, the apiserver's serving certificate for 127.0.0.1,
 * an admin client certificate in system:masters, and the service-account signing key pair.
 */
export function makeCerts(dir: string, extraSANs: string[] = []): Certs {
  const p = (f: string) => join(dir, f);
  makeCA(dir, "weft-test-ca");
  const sans = [
    "IP:127.0.0.1",
    "DNS:localhost",
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
    "IP:10.96.0.1",
    ...extraSANs,
  ];
  signLeaf(dir, "apiserver", "/CN=kube-apiserver", serverExt(sans));
  clientCert(dir, "admin", "/O=system:masters/CN=weft-admin");
  openssl(["genrsa", "-out", "sa.key", "2048"], dir);
  openssl(["rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub"], dir);
  return {
    caCert: p("ca.crt"),
    caKey: p("ca.key"),
    serverCert: p("apiserver.crt"),
    serverKey: p("apiserver.key"),
    adminCert: p("admin.crt"),
    adminKey: p("admin.key"),
    saKey: p("sa.key"),
    saPub: p("sa.pub"),
  };
}
