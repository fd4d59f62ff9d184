import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DEFAULT_NAMESPACE } from "../api/index.js";
import { ownNamespace } from "./namespace.js";

describe("ownNamespace", () => {
  it("is POD_NAMESPACE when the downward API sets it, else the default", () => {
    assert.equal(ownNamespace({ POD_NAMESPACE: "networking" }), "networking");
    assert.equal(ownNamespace({ POD_NAMESPACE: "" }), DEFAULT_NAMESPACE);
    assert.equal(ownNamespace({}), "kube-system");
  });
});
