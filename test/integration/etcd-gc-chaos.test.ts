import { after } from "node:test";
import { startTestEtcd } from "../../devenv/containers/etcd.js";

/**
 * gc-chaos.test.ts on the etcd backend: allocator processes SIGKILLed mid-run, `weftctl ipam check`
 * (which picks etcd up from WEFT_DATASTORE like the controller and agent) reports every leak, and
 * the GC frees exactly those, with every weft.dev object in a TLS etcd of this file's own.
 */
const etcd = await startTestEtcd();
Object.assign(process.env, etcd.env(`/weft-gcchaos-${process.pid}`));
await import("./gc-chaos.test.js");
// Registered after the suite's own after(): its cleanup still has etcd to talk to.
after(() => etcd.stop());
