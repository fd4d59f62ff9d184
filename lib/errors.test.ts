import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { errorMessage } from "./errors.js";

describe("errorMessage", () => {
  it("gives an Error's message and any other thrown value as text", () => {
    assert.equal(errorMessage(new RangeError("out of range")), "out of range");
    assert.equal(errorMessage("plain"), "plain");
    assert.equal(errorMessage(42), "42");
    assert.equal(errorMessage(undefined), "undefined");
  });
});
