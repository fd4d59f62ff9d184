import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { e2eRepoList } from "../images/recipes.js";
import { repoRoot } from "../tools.js";
import { e2eCommand, parseGinkgoSummary, parseSkipList, specPattern, summaryText } from "./e2e.js";

const FAILED_RUN = `
------------------------------
• [FAILED] [61.220 seconds]
[sig-network] DNS [It] should provide DNS for services [Conformance]

Summarizing 2 Failures:
  [FAIL] [sig-network] DNS [It] should provide DNS for services [Conformance]
  k8s.io/kubernetes/test/e2e/network/dns_common.go:476
  [FAIL] [sig-network] Services [It] should serve a basic endpoint from pods [Conformance]
  k8s.io/kubernetes/test/e2e/network/service.go:802

Ran 12 of 6624 Specs in 301.214 seconds
FAIL! -- 10 Passed | 2 Failed | 0 Pending | 6612 Skipped


Ginkgo ran 1 suite in 5m3.1s

Test Suite Failed
`;

describe("the upstream e2e runner", () => {
  it("reads ginkgo's closing counts, the failed specs and the time", () => {
    const s = parseGinkgoSummary(FAILED_RUN);
    assert.deepEqual(s, {
      ran: 12,
      total: 6624,
      seconds: 301.214,
      passed: 10,
      failed: 2,
      flaked: 0,
      pending: 0,
      skipped: 6612,
      failures: [
        "[FAIL] [sig-network] DNS [It] should provide DNS for services [Conformance]",
        "[FAIL] [sig-network] Services [It] should serve a basic endpoint from pods [Conformance]",
      ],
    });
    assert.match(summaryText(FAILED_RUN), /^Summarizing 2 Failures:[\s\S]*Test Suite Failed$/);
  });

  it("reads a passing, a flaky and an interrupted summary, and none from a run that died", () => {
    const ok = "Ran 3 of 10 Specs in 9.5 seconds\nSUCCESS! -- 3 Passed | 0 Failed | 0 Pending | 7 Skipped\n";
    assert.equal(parseGinkgoSummary(ok)?.passed, 3);
    assert.deepEqual(parseGinkgoSummary(ok)?.failures, []);
    const flaky =
      "Ran 3 of 10 Specs in 9.5 seconds\nSUCCESS! -- 3 Passed | 0 Failed | 1 Flaked | 0 Pending | 7 Skipped\n";
    assert.equal(parseGinkgoSummary(flaky)?.flaked, 1);
    const cut =
      "Ran 2 of 10 Specs in 60 seconds\nFAIL! - Interrupted by Timeout -- 1 Passed | 1 Failed | 0 Pending | 8 Skipped\n";
    assert.equal(parseGinkgoSummary(cut)?.failed, 1);
    assert.equal(parseGinkgoSummary("• [FAILED] something\npanic: boom\n"), undefined);
  });

  it("refuses a skip entry without a reason or with a broken pattern", () => {
    assert.deepEqual(parseSkipList("# comment\n\n\\[Serial\\] -- runs alone\n"), [
      { pattern: "\\[Serial\\]", reason: "runs alone" },
    ]);
    assert.throws(() => parseSkipList("\\[Serial\\]\n"), /line 1: .* gives no reason/);
    assert.throws(() => parseSkipList("ok -- fine\n[unclosed -- why\n"), /line 2:/);
  });

  it("the committed skip list gives every entry a reason and never skips a Conformance spec by name", () => {
    const entries = parseSkipList(
      readFileSync(join(repoRoot, "test", "conformance", "skip-list.txt"), "utf8"),
    );
    assert.ok(entries.length > 0);
    for (const e of entries) {
      assert.ok(e.reason.length > 10, `${e.pattern}: reason too short`);
      assert.doesNotMatch(e.pattern, /Conformance/, "a Conformance spec is never skipped by name");
    }
    // specs that would send traffic off the machine are among the skipped ones
    const skipped = (text: string) => entries.some((e) => new RegExp(e.pattern).test(text));
    assert.ok(
      skipped(
        "[sig-network] Networking should provide Internet connection for containers [Feature:Networking-IPv4]",
      ),
    );
    assert.ok(!skipped("[sig-network] DNS should provide DNS for services [Conformance]"));
  });

  it("runs the precompiled suite through ginkgo with every image registry remapped to the local one", () => {
    const { cmd, args, env } = e2eCommand(
      {
        kubeconfig: "/k/config",
        focus: [specPattern("[sig-network] DNS should provide DNS for services [Conformance]")],
        skip: [{ pattern: "\\[Serial\\]", reason: "r" }],
        parallel: 2,
        reportDir: "/r",
        nodes: 2,
        timeout: "1h",
      },
      { ginkgo: "/b/ginkgo", e2eTest: "/b/e2e.test", kubectl: "/b/kubectl", repoList: "/r/repo.yaml" },
    );
    assert.equal(cmd, "/b/ginkgo");
    const split = args.indexOf("--");
    assert.equal(args[split - 1], "/b/e2e.test", "ginkgo flags, the binary, then the suite's own flags");
    assert.ok(args.slice(0, split).includes("--procs=2"));
    assert.ok(
      args.includes("--focus=\\[sig-network\\] DNS should provide DNS for services \\[Conformance\\]"),
    );
    assert.ok(args.includes("--skip=\\[Serial\\]"));
    assert.ok(args.slice(split).includes("--kubeconfig=/k/config"));
    assert.ok(args.slice(split).includes("--kubectl-path=/b/kubectl"));
    assert.equal(env.KUBE_TEST_REPO_LIST, "/r/repo.yaml");
    // no registry of upstream is left in the list the suite reads
    assert.doesNotMatch(e2eRepoList(), /registry\.k8s\.io|gcr\.io|docker\.io/);
    assert.match(e2eRepoList(), /^promoterE2eRegistry: localhost\//m);
  });
});
