import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { etcdOptionsFromEnv, validateEtcdOptions } from "./etcdconfig.js";
import { prefixEnd } from "./etcdwatch.js";

describe("etcd connection options", () => {
  it("reads WEFT_ETCD_* and names what is missing", () => {
    assert.throws(() => etcdOptionsFromEnv({}), /WEFT_ETCD_ENDPOINTS/);
    const o = etcdOptionsFromEnv({
      WEFT_ETCD_ENDPOINTS: "https://127.0.0.1:2379, https://127.0.0.2:2379",
      WEFT_ETCD_CA: "/ca",
      WEFT_ETCD_CERT: "/c",
      WEFT_ETCD_KEY: "/k",
      WEFT_ETCD_PREFIX: "/x/y",
    });
    assert.deepEqual(o, {
      endpoints: ["https://127.0.0.1:2379", "https://127.0.0.2:2379"],
      ca: "/ca",
      cert: "/c",
      key: "/k",
      prefix: "/x/y",
    });
    validateEtcdOptions(o);
  });

  it("refuses half a key pair, https without a CA, and bad prefixes", () => {
    assert.throws(
      () => validateEtcdOptions({ endpoints: ["https://a:1"], ca: "/ca", cert: "/c" }),
      /WEFT_ETCD_KEY/,
    );
    assert.throws(() => validateEtcdOptions({ endpoints: ["https://a:1"] }), /WEFT_ETCD_CA/);
    assert.throws(() => validateEtcdOptions({ endpoints: ["a:1"] }), /bad endpoint/);
    assert.throws(() => validateEtcdOptions({ endpoints: ["http://a:1"], prefix: "/x/" }), /prefix/);
  });

  it("prefixEnd is the first key after every key with the prefix", () => {
    assert.deepEqual(prefixEnd(Buffer.from("/a/")), Buffer.from("/a0"));
    assert.deepEqual(prefixEnd(Buffer.from([0x61, 0xff])), Buffer.from([0x62]));
  });
});
