import assert from "node:assert/strict";
import { test } from "node:test";
import { normalizeRules, parseCanIList } from "./canilist-support.js";

const SAMPLE = `Resources                                       Non-Resource URLs   Resource Names      Verbs
leases.coordination.k8s.io                      []                  [weft-controller]   [update get]
leases.coordination.k8s.io                      []                  []                  [create]
secrets                                         []                  []                  [watch get list]
                                                [/healthz]          []                  [get]
                                                [/healthz]          []                  [get]
`;

test("can-i --list: cells are cut at the header's columns, empty resources included", () => {
  const rows = parseCanIList(SAMPLE);
  assert.equal(rows.length, 5);
  assert.deepEqual(rows[0], {
    resources: "leases.coordination.k8s.io",
    nonResourceURLs: "[]",
    resourceNames: "[weft-controller]",
    verbs: "[update get]",
  });
  assert.deepEqual(rows[3], {
    resources: "",
    nonResourceURLs: "[/healthz]",
    resourceNames: "[]",
    verbs: "[get]",
  });
});

test("can-i --list: normalized text is sorted, deduplicated, verbs ordered, names replaced", () => {
  const text = normalizeRules(parseCanIList(SAMPLE), [["weft-controller", "<lease>"]]);
  assert.equal(
    text,
    [
      "-  [/healthz]  []  [get]",
      "leases.coordination.k8s.io  []  [<lease>]  [get update]",
      "leases.coordination.k8s.io  []  []  [create]",
      "secrets  []  []  [get list watch]",
      "",
    ].join("\n"),
  );
});

test("can-i --list: anything else is an error, not an empty permission set", () => {
  assert.throws(
    () => parseCanIList("error: You must be logged in to the server (Unauthorized)\n"),
    /not kubectl/,
  );
});
