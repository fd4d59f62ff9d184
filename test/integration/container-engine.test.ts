import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { GenericContainer } from "testcontainers";
import { engineApi, RUN_LABEL } from "../../devenv/containers/engine.js";
import { CONTAINERS_ENV, containersMode } from "../../devenv/containers/mode.js";
import { testEngine } from "../../devenv/containers/start.js";

/**
 * What the run's container engine refuses, whatever a test asks of it: podman's default bridge
 * network (NAT to the outside) cannot come up, and an image that was not built here is never
 * fetched from a registry.
 */
const off = containersMode() === "off";

describe("the test run's container engine", {
  skip: off && `${CONTAINERS_ENV}=off: no engine in this run`,
}, () => {
  const engine = off ? undefined : testEngine();
  const name = `weft-bridge-probe-${process.pid}`;

  after(async () => {
    if (engine)
      await engineApi(engine.socket, "DELETE", `/containers/${name}?force=true`).catch(() => undefined);
  });

  it("cannot attach a container to a bridge network", async () => {
    const e = engine!;
    const bridged = new GenericContainer(e.images.etcd!)
      .withName(name)
      .withNetworkMode("bridge")
      .withLabels({ [RUN_LABEL]: e.label })
      .withCommand(["--version"]);
    await assert.rejects(bridged.start(), /plugin "bridge"|bridge/);
    const listed = await engineApi<Array<{ Names: string[]; State: string }>>(
      e.socket,
      "GET",
      `/containers/json?all=true&filters=${encodeURIComponent(JSON.stringify({ label: [`${RUN_LABEL}=${e.label}`] }))}`,
    );
    const probe = listed.find((c) => c.Names.some((n) => n.replace(/^\//, "") === name));
    assert.ok(probe, "the container exists, labelled as this run's");
    assert.notEqual(probe.State, "running");
  });

  it("never reaches a registry: a pull of an image not built here goes to a closed loopback proxy", async () => {
    const e = engine!;
    const image = `registry.weft.invalid/nothing-${process.pid}:never`;
    await assert.rejects(
      new GenericContainer(image)
        .withNetworkMode("host")
        .withLabels({ [RUN_LABEL]: e.label })
        .start(),
      /no such image|image not known/,
    );
    const attempts = readFileSync(join(e.dir, "service.log"), "utf8")
      .split("\n")
      .filter((l) => l.includes(image) && l.includes("Error"));
    assert.ok(attempts.length > 0, "the engine logged its pull attempt");
    for (const l of attempts) assert.match(l, /proxyconnect tcp: dial tcp 127\.0\.0\.1:9/);
  });
});
