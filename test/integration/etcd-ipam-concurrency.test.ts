import { after } from "node:test";
import { startTestEtcd } from "../../devenv/containers/etcd.js";

/**
 * ipam-concurrency.test.ts on the etcd backend: the same allocator processes, the same checks
 * (zero duplicates, blocks agree), with every weft.dev object in a TLS etcd of this file's own.
 * The environment is set before the suite's module runs, so its store and its workers use etcd.
 */
const etcd = await startTestEtcd();
Object.assign(process.env, etcd.env(`/weft-ipamcc-${process.pid}`));
await import("./ipam-concurrency.test.js");
// Registered after the suite's own after(): its cleanup still has etcd to talk to.
after(() => etcd.stop());
