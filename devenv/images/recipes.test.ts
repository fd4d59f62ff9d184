import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { repoRoot } from "../tools.js";
import { archiveName, copySources, dockerfileArg, nodeBaseFor, stamp } from "./recipes.js";

describe("image recipes", () => {
  it("makes the node base the Dockerfile pins from that exact Node.js release and its npm", () => {
    const dockerfile = readFileSync(join(repoRoot, "Dockerfile"), "utf8");
    const ref = dockerfileArg(dockerfile, "NODE_IMAGE");
    assert.ok(ref, "the Dockerfile pins its base in ARG NODE_IMAGE");
    // a new pin needs its bundled npm recorded, or the real-node images cannot be made
    const base = nodeBaseFor(ref);
    assert.match(base.qualified, /^docker\.io\/library\/node:\d+\.\d+\.\d+-bookworm-slim$/);
    assert.equal(nodeBaseFor("node:24.22.3-bookworm-slim").npmVersion, "11.19.1");
  });

  it("refuses base images it cannot make faithfully", () => {
    assert.throws(() => nodeBaseFor("node:24-bookworm-slim"), /expected node:X\.Y\.Z-SUITE-slim/);
    assert.throws(() => nodeBaseFor("node:24.22.3-trixie-slim"), /only bookworm/);
    assert.throws(() => nodeBaseFor("node:1.2.3-bookworm-slim"), /BUNDLED_NPM/);
  });

  it("stamps change with any input and name archives after the image and stamp", () => {
    assert.equal(stamp(["a", "b"]), stamp(["a", "b"]));
    assert.notEqual(stamp(["a", "b"]), stamp(["ab"]));
    assert.notEqual(stamp(["a"]), stamp(["a", ""]));
    assert.equal(stamp(["x"]).length, 16);
    assert.equal(archiveName("registry.k8s.io/pause:3.10", "abc"), "registry.k8s.io_pause_3.10-abc.oci.tar");
  });

  it("reads the build-context sources of COPY instructions, not those of other stages", () => {
    const text = [
      "ARG NODE_IMAGE=node:24.22.3-bookworm-slim",
      "FROM node:24.22.3-bookworm-slim AS build",
      "COPY package.json package-lock.json ./",
      "COPY --chown=1:1 api ./api",
      "COPY ./lib/ ./lib",
      "FROM node:24.22.3-bookworm-slim",
      "COPY --from=build /src/dist ./dist",
    ].join("\n");
    assert.deepEqual(copySources(text), ["api", "lib", "package-lock.json", "package.json"]);
    assert.equal(dockerfileArg(text, "NODE_IMAGE"), "node:24.22.3-bookworm-slim");
    assert.equal(dockerfileArg(text, "OTHER"), undefined);
  });
});
