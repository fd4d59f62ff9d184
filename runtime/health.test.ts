import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Counter } from "prom-client";
import { HealthServer } from "./health.js";

describe("HealthServer", () => {
  const server = new HealthServer({ host: "127.0.0.1" });
  let url = "";
  let synced = false;

  before(async () => {
    server.addReadyCheck("informers", () => synced || "IPPool informer not synced");
    server.addReadyCheck("leader-election", () => true);
    ({ url } = await server.start());
  });
  after(() => server.stop());

  it("/healthz answers ok while the process runs", async () => {
    const res = await fetch(`${url}/healthz`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), "ok\n");
  });

  it("/readyz is 503 naming the failing check, then 200 once every check passes", async () => {
    let res = await fetch(`${url}/readyz`);
    assert.equal(res.status, 503);
    assert.match(await res.text(), /\[-\]informers: IPPool informer not synced/);
    res = await fetch(`${url}/readyz?verbose`);
    const body = await res.text();
    assert.match(body, /\[\+\]leader-election ok/);
    synced = true;
    res = await fetch(`${url}/readyz`);
    assert.equal(res.status, 200);
  });

  it("/readyz treats a throwing check as not ready", async () => {
    server.addReadyCheck("broken", () => {
      throw new Error("cannot reach the datastore");
    });
    const res = await fetch(`${url}/readyz`);
    assert.equal(res.status, 503);
    assert.match(await res.text(), /broken: cannot reach the datastore/);
    server.removeReadyCheck("broken");
  });

  it("/metrics serves the default registry in Prometheus text format, process metrics included", async () => {
    const c = new Counter({ name: `weft_health_test_total`, help: "test counter" });
    c.inc(3);
    const res = await fetch(`${url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /text\/plain/);
    const body = await res.text();
    assert.match(body, /^weft_health_test_total 3$/m);
    assert.match(body, /^process_cpu_user_seconds_total /m);
    assert.match(body, /^nodejs_eventloop_lag_seconds /m);
  });

  it("answers 404 for anything else", async () => {
    assert.equal((await fetch(`${url}/nope`)).status, 404);
  });
});
