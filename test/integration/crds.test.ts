import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { stringify } from "yaml";
import { blockName } from "../../api/ipamblock.js";
import { PLURALS } from "../../api/meta.js";
import { testCluster } from "../../devenv/cluster.js";
import { waitFor } from "../../devenv/procs.js";
import { repoRoot } from "../../devenv/tools.js";
import { invalidFixtures, type Manifest, validManifestFiles } from "../fixtures/manifests.js";

/**
 * The weft.dev CRDs as the real apiserver enforces them: examples are accepted, the invalid corpus
 * is refused with a message naming the field, status only moves through the status subresource,
 * and kubectl shows the printer columns, the explanations and the weft category.
 */
const cluster = testCluster();

interface Outcome {
  ok: boolean;
  stdout: string;
  stderr: string;
}

async function run(args: string[], input?: string): Promise<Outcome> {
  try {
    return { ok: true, stdout: await cluster.kubectl(args, input), stderr: "" };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    return { ok: false, stdout: e.stdout ?? "", stderr: e.stderr ?? e.message };
  }
}

async function must(args: string[], input?: string): Promise<string> {
  const out = await run(args, input);
  assert.ok(out.ok, `kubectl ${args.join(" ")} failed: ${out.stderr}`);
  return out.stdout;
}

const toYaml = (docs: Manifest[]) => docs.map((d) => stringify(d)).join("---\n");

/** Real objects this file creates are named after the process, and disabled/selecting no node. */
const suffix = `crdtest-${process.pid}`;

describe("weft.dev CRDs on the real apiserver", () => {
  it("are Established with structural schemas", async () => {
    for (const plural of Object.values(PLURALS)) {
      const crd = JSON.parse(await must(["get", "crd", `${plural}.weft.dev`, "-o", "json"]));
      const conds = new Map<string, string>(
        crd.status.conditions.map((c: { type: string; status: string }) => [c.type, c.status]),
      );
      assert.equal(conds.get("Established"), "True", plural);
      assert.equal(conds.get("NonStructuralSchema"), undefined, plural);
    }
  });

  // Each case is one kubectl process and touches only its own objects, so a few run at once.
  describe("accept every manifest of examples/ and test/fixtures/valid/", { concurrency: 4 }, () => {
    for (const file of validManifestFiles()) {
      it(file.path, async () => {
        const out = await run(["apply", "--dry-run=server", "-f", `${repoRoot}/${file.path}`]);
        assert.ok(out.ok, `${file.path} was refused:\n${out.stderr}`);
        assert.equal(out.stdout.match(/\(server dry run\)/g)?.length, file.docs.length, out.stdout);
      });
    }
  });

  describe("refuse every manifest of test/fixtures/invalid/, naming the field", { concurrency: 4 }, () => {
    for (const fx of invalidFixtures()) {
      it(`${fx.path}: ${fx.why}`, async () => {
        const beforeDocs = fx.docs.slice(0, -1);
        const last = fx.docs.at(-1)!;
        try {
          if (beforeDocs.length) await must(["apply", "-f", "-"], toYaml(beforeDocs));
          const out = await run(["apply", "--dry-run=server", "-f", "-"], toYaml([last]));
          assert.equal(out.ok, false, `${fx.path} was accepted:\n${out.stdout}`);
          assert.ok(
            out.stderr.includes(fx.expect),
            `the rejection of ${fx.path} does not name ${fx.expect}:\n${out.stderr}`,
          );
        } finally {
          if (beforeDocs.length)
            await run(["delete", "--ignore-not-found", "--wait=false", "-f", "-"], toYaml(beforeDocs));
        }
      });
    }
  });

  it("accepts IPAMBlocks named by blockName() for any CIDR (the CEL name rule and api/ agree)", async () => {
    const v4 = fc
      .tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 20, max: 32 }))
      .map(([n, len]) => {
        const masked = len === 0 ? 0 : (n >>> (32 - len)) * 2 ** (32 - len);
        const bytes = [24, 16, 8, 0].map((s) => Math.floor(masked / 2 ** s) % 256);
        return `${bytes.join(".")}/${len}`;
      });
    // Groups are often zero so that "::" shows up in every position.
    const group = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff }));
    const v6 = fc
      .tuple(fc.array(group, { minLength: 8, maxLength: 8 }), fc.integer({ min: 116, max: 128 }))
      .map(([groups, len]) => {
        const g = [...groups];
        g[0] = 0xfd00; // unique-local, like a real pool
        const hostBits = 128 - len;
        g[7] = (g[7]! >> Math.min(hostBits, 16)) << Math.min(hostBits, 16);
        const addr = new URL(`http://[${g.map((x) => x.toString(16)).join(":")}]`).hostname.slice(1, -1);
        return `${addr}/${len}`;
      });
    const cidrs = [...new Set(fc.sample(fc.oneof(v4, v6), { numRuns: 60, seed: 4242 }))];
    cidrs.push("fd00::/128", "fd00::1:0/120", "fd00:0:0:1::/116");
    const docs = cidrs.map((cidr) => ({
      apiVersion: "weft.dev/v1alpha1",
      kind: "IPAMBlock",
      metadata: { name: blockName(cidr) },
      spec: { cidr, pool: "fixture-pool", affinity: "", sequence: 0, allocations: [] },
    }));
    const out = await run(["apply", "--dry-run=server", "-f", "-"], toYaml(docs as Manifest[]));
    assert.ok(out.ok, `refused:\n${out.stderr}\nCIDRs: ${cidrs.join(" ")}`);
  });

  describe("status subresource", () => {
    const name = `status-${suffix}`;
    const pool = {
      apiVersion: "weft.dev/v1alpha1",
      kind: "IPPool",
      metadata: { name },
      spec: {
        cidr: "198.19.0.0/16",
        disabled: true,
        nodeSelector: { matchLabels: { "weft.dev/test-fixture": "never-matches" } },
      },
    };
    const status = {
      observedGeneration: 1,
      conditions: [
        {
          type: "Ready",
          status: "True",
          reason: "Serving",
          message: "",
          lastTransitionTime: "2025-01-01T00:00:00Z",
          observedGeneration: 1,
        },
      ],
      blockSize: 26,
      blocks: { used: 1, total: "1024" },
      addresses: { used: 5, free: "65531" },
    };
    const get = async () => JSON.parse(await must(["get", "ippool", name, "-o", "json"]));

    before(async () => {
      await must(["apply", "-f", "-"], JSON.stringify(pool));
    });
    after(async () => {
      await run(["delete", "ippool", name, "--ignore-not-found", "--wait=false"]);
    });

    it("ignores .status written through the main resource", async () => {
      await must(["patch", "ippool", name, "--type=merge", "-p", JSON.stringify({ status })]);
      const obj = await get();
      assert.equal(obj.status, undefined);
      assert.equal(obj.metadata.generation, 1);
    });

    it("keeps .status written through the status subresource, without touching spec or generation", async () => {
      await must([
        "patch",
        "ippool",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        JSON.stringify({ status, spec: { natOutgoing: false } }),
      ]);
      const obj = await get();
      assert.deepEqual(obj.status, status);
      assert.equal(obj.spec.natOutgoing, true, "the schema's default, untouched by a status write");
      assert.equal(obj.metadata.generation, 1);
    });

    it("validates .status too", async () => {
      const bad = { status: { addresses: { used: -1, free: "many" } } };
      const out = await run([
        "patch",
        "ippool",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        JSON.stringify(bad),
      ]);
      assert.equal(out.ok, false);
      assert.match(out.stderr, /status\.addresses\.used/);
      assert.match(out.stderr, /status\.addresses\.free/);
    });

    it("bumps the generation on spec changes and applies schema defaults", async () => {
      await must([
        "patch",
        "ippool",
        name,
        "--type=merge",
        "-p",
        JSON.stringify({ spec: { natOutgoing: false } }),
      ]);
      const obj = await get();
      assert.equal(obj.metadata.generation, 2);
      assert.equal(obj.spec.encapsulation, "VXLAN");
      assert.equal(obj.spec.crossSubnet, false);
      assert.equal(obj.spec.allocation, "Blocks");
      assert.equal(obj.spec.strictAffinity, true);
      assert.equal(obj.spec.blockSize, undefined);
    });

    it("lets the controller fill in the default blockSize, and nothing else", async () => {
      await must([
        "patch",
        "ippool",
        name,
        "--type=merge",
        "-p",
        JSON.stringify({ spec: { blockSize: 26 } }),
      ]);
      assert.equal((await get()).spec.blockSize, 26);
      const out = await run([
        "patch",
        "ippool",
        name,
        "--type=merge",
        "-p",
        JSON.stringify({ spec: { blockSize: 27 } }),
      ]);
      assert.equal(out.ok, false);
      assert.match(out.stderr, /spec\.blockSize/);
    });

    it("shows the printer columns in kubectl get ippools", async () => {
      const out = await must(["get", "ippools", name]);
      const [header, row] = out.trim().split("\n");
      assert.deepEqual(header?.split(/\s+/), [
        "NAME",
        "CIDR",
        "BLOCKSIZE",
        "ENCAPSULATION",
        "USED",
        "FREE",
        "READY",
        "AGE",
      ]);
      const cells = row?.split(/\s+/) ?? [];
      assert.deepEqual(cells.slice(0, 7), [name, "198.19.0.0/16", "26", "VXLAN", "5", "65531", "True"]);
      const wide = await must(["get", "ipp", name, "-o", "wide"]);
      assert.match(wide.split("\n")[0] ?? "", /ALLOCATION.*DISABLED/);
    });

    it("lists weft.dev objects under kubectl get weft", async () => {
      const out = await must(["get", "weft", "-o", "name"]);
      assert.ok(out.split("\n").includes(`ippool.weft.dev/${name}`), out);
      const resources = await must(["api-resources", "--categories=weft", "-o", "name"]);
      assert.deepEqual(
        resources.trim().split("\n").sort(),
        Object.values(PLURALS)
          .map((p) => `${p}.weft.dev`)
          .sort(),
      );
    });
  });

  it("teaches through kubectl explain", async () => {
    // The OpenAPI document of a new CRD is published a moment after it is Established.
    const spec = await waitFor(
      "kubectl explain ippool.spec",
      async () => {
        const out = await run(["explain", "ippool.spec"]);
        return out.ok && out.stdout.includes("blockSize") ? out.stdout : undefined;
      },
      60000,
      500,
    );
    for (const field of [
      "cidr",
      "blockSize",
      "allocation",
      "encapsulation",
      "vxlan",
      "natOutgoing",
      "nodeSelector",
    ]) {
      assert.match(spec, new RegExp(`^\\s+${field}\\s`, "m"), `explain lists ${field}`);
    }
    assert.match(spec, /Immutable\. The pool's range/);
    const blockSize = await must(["explain", "ippool.spec.blockSize"]);
    assert.match(blockSize, /26 for IPv4/);
    const peer = await must(["explain", "bgppeer.spec.peerSelector"]);
    assert.match(peer, /matchExpressions/);
  });
});
