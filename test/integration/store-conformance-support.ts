import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { register } from "prom-client";
import { API_VERSION, type BGPPeer, blockName, type IPAMBlock, ownBlocks } from "../../api/index.js";
import {
  AlreadyExistsError,
  ConflictError,
  NotFoundError,
  type Store,
  TooManyConflictsError,
  type WatchEvent,
} from "../../datastore/store.js";
import { waitFor } from "../../devenv/procs.js";

export interface ConformanceOptions {
  /**
   * A resourceVersion the backend no longer keeps history for, so a watch from it must report
   * EXPIRED. Default "1" (older than anything an apiserver's watch cache or a compacted etcd keeps).
   */
  expiredResourceVersion?: (store: Store) => Promise<string>;
}

/**
 * The behaviour every Store backend must have, run against a real backend. BGPPeer objects are
 * the subject because nothing else in the test run writes them; each object peers (on paper)
 * with a node that does not exist, at 127.0.0.1, so no agent ever acts on them.
 */
export function runStoreConformance(
  name: string,
  makeStore: () => Store | Promise<Store>,
  opts: ConformanceOptions = {},
): void {
  describe(`Store conformance: ${name}`, () => {
    const prefix = `conf-${process.pid}-${randomBytes(3).toString("hex")}`;
    let store: Store;
    let n = 0;
    const fresh = () => `${prefix}-${n++}`;
    const peer = (objName: string, port = 179): BGPPeer => ({
      apiVersion: API_VERSION,
      kind: "BGPPeer",
      metadata: { name: objName, labels: { "weft.dev/test": prefix } },
      spec: { peerIP: "127.0.0.1", asNumber: 64512, node: `${prefix}-nonexistent`, port },
    });
    const ours = (o: { metadata: { name: string } }) => o.metadata.name.startsWith(`${prefix}-`);

    before(async () => {
      store = await makeStore();
    });

    after(async () => {
      if (!store) return;
      const { items } = await store.list("BGPPeer");
      await Promise.all(items.filter(ours).map((o) => store.delete("BGPPeer", o.metadata.name)));
    });

    it("get of an absent object is undefined", async () => {
      assert.equal(await store.get("BGPPeer", fresh()), undefined);
    });

    it("create stores the object and returns it with a resourceVersion; get reads it back", async () => {
      const nm = fresh();
      const created = await store.create("BGPPeer", peer(nm, 1179));
      assert.equal(created.metadata.name, nm);
      assert.equal(typeof created.metadata.resourceVersion, "string");
      assert.ok(created.metadata.resourceVersion);
      assert.equal(created.spec.port, 1179);
      const got = await store.get("BGPPeer", nm);
      assert.ok(got);
      assert.equal(got.metadata.resourceVersion, created.metadata.resourceVersion);
      assert.equal(got.metadata.uid, created.metadata.uid);
      assert.deepEqual(got.spec, created.spec);
      assert.equal(got.kind, "BGPPeer");
      assert.equal(got.apiVersion, API_VERSION);
    });

    it("create of an existing name throws AlreadyExistsError and keeps the first object", async () => {
      const nm = fresh();
      await store.create("BGPPeer", peer(nm, 1000));
      await assert.rejects(store.create("BGPPeer", peer(nm, 2000)), (err: unknown) => {
        assert.ok(err instanceof AlreadyExistsError, String(err));
        assert.equal(err.kind, "BGPPeer");
        assert.equal(err.objectName, nm);
        assert.match(err.message, new RegExp(nm));
        return true;
      });
      assert.equal((await store.get("BGPPeer", nm))?.spec.port, 1000);
    });

    it("create ignores a resourceVersion carried over from another object", async () => {
      const a = await store.create("BGPPeer", peer(fresh()));
      const b = peer(fresh());
      b.metadata.resourceVersion = a.metadata.resourceVersion;
      const created = await store.create("BGPPeer", b);
      assert.ok(created.metadata.resourceVersion);
    });

    it("list returns every object and a resourceVersion", async () => {
      const names = [fresh(), fresh(), fresh()];
      for (const nm of names) await store.create("BGPPeer", peer(nm));
      const listed = await store.list("BGPPeer");
      assert.equal(typeof listed.resourceVersion, "string");
      assert.ok(listed.resourceVersion);
      const got = new Set(listed.items.map((o) => o.metadata.name));
      for (const nm of names) assert.ok(got.has(nm), `${nm} missing from list`);
    });

    it("update is a compare-and-swap on resourceVersion", async () => {
      const nm = fresh();
      const v1 = await store.create("BGPPeer", peer(nm, 1001));
      const v2 = await store.update("BGPPeer", { ...v1, spec: { ...v1.spec, port: 1002 } });
      assert.notEqual(v2.metadata.resourceVersion, v1.metadata.resourceVersion);
      assert.equal(v2.spec.port, 1002);
      // A writer still holding v1 loses.
      await assert.rejects(
        store.update("BGPPeer", { ...v1, spec: { ...v1.spec, port: 1003 } }),
        (err: unknown) => {
          assert.ok(err instanceof ConflictError, String(err));
          assert.equal(err.objectName, nm);
          return true;
        },
      );
      assert.equal((await store.get("BGPPeer", nm))?.spec.port, 1002);
    });

    it("update refuses an object without resourceVersion (no blind overwrite)", async () => {
      const nm = fresh();
      const v1 = await store.create("BGPPeer", peer(nm, 1001));
      const { resourceVersion: _rv, ...meta } = v1.metadata;
      await assert.rejects(store.update("BGPPeer", { ...v1, metadata: meta, spec: { ...v1.spec, port: 9 } }));
      assert.equal((await store.get("BGPPeer", nm))?.spec.port, 1001);
    });

    it("update of an absent object throws NotFoundError", async () => {
      const obj = peer(fresh());
      obj.metadata.resourceVersion = "12345";
      await assert.rejects(store.update("BGPPeer", obj), (err: unknown) => {
        // A backend may detect the missing object either way; both tell the caller to re-read.
        assert.ok(err instanceof NotFoundError || err instanceof ConflictError, String(err));
        return true;
      });
    });

    it("updateStatus writes the status only, with compare-and-swap; update leaves the status alone", async () => {
      const nm = fresh();
      const v1 = await store.create("BGPPeer", peer(nm, 1001));
      const v2 = await store.updateStatus("BGPPeer", {
        ...v1,
        spec: { ...v1.spec, port: 4242 },
        status: { expectedSessions: 3, selectedNodes: ["a"] },
      });
      assert.notEqual(v2.metadata.resourceVersion, v1.metadata.resourceVersion);
      const got = await store.get("BGPPeer", nm);
      assert.equal(got?.status?.expectedSessions, 3);
      assert.equal(got?.spec.port, 1001, "updateStatus must not change the spec");
      await assert.rejects(
        store.updateStatus("BGPPeer", { ...v1, status: { expectedSessions: 9 } }),
        ConflictError,
      );
      const v3 = await store.update("BGPPeer", { ...v2, spec: { ...v2.spec, port: 1005 }, status: {} });
      assert.equal(v3.spec.port, 1005);
      assert.equal(
        (await store.get("BGPPeer", nm))?.status?.expectedSessions,
        3,
        "update must keep the status",
      );
    });

    it("apply creates an absent object, then replaces what it owns: a label left out is removed", async () => {
      const nm = fresh();
      const first = peer(nm, 1010);
      first.metadata.labels = { ...first.metadata.labels, "weft.dev/extra": "yes" };
      const created = await store.apply("BGPPeer", first);
      assert.equal(created.spec.port, 1010);
      assert.equal(created.metadata.labels?.["weft.dev/extra"], "yes");
      const second = peer(nm, 1011);
      const applied = await store.apply("BGPPeer", second);
      assert.equal(applied.spec.port, 1011);
      const got = await store.get("BGPPeer", nm);
      assert.deepEqual(got?.metadata.labels, second.metadata.labels, "the label left out is gone");
      assert.equal(got?.spec.port, 1011);
      assert.equal(got?.metadata.uid, created.metadata.uid, "the same object, not a new one");
    });

    it("apply leaves the status and finalizers alone; applying the same object again changes nothing", async () => {
      const nm = fresh();
      await store.apply("BGPPeer", peer(nm, 1020));
      await store.applyStatus("BGPPeer", nm, { expectedSessions: 2 });
      await store.applyFinalizer("BGPPeer", nm, "weft.dev/conformance", true);
      const before = await store.get("BGPPeer", nm);
      const again = await store.apply("BGPPeer", peer(nm, 1020));
      assert.equal(
        again.metadata.resourceVersion,
        before?.metadata.resourceVersion,
        "a no-op apply writes nothing",
      );
      await store.apply("BGPPeer", peer(nm, 1021));
      const got = await store.get("BGPPeer", nm);
      assert.equal(got?.status?.expectedSessions, 2, "apply must keep the status");
      assert.deepEqual(got?.metadata.finalizers, ["weft.dev/conformance"], "apply must keep finalizers");
      await store.applyFinalizer("BGPPeer", nm, "weft.dev/conformance", false);
    });

    it("applyStatus replaces the status only, and refuses an absent object", async () => {
      const nm = fresh();
      await store.create("BGPPeer", peer(nm, 1030));
      await store.applyStatus("BGPPeer", nm, { expectedSessions: 4, selectedNodes: ["a"] });
      const v2 = await store.applyStatus("BGPPeer", nm, { expectedSessions: 5 });
      assert.equal(v2.status?.expectedSessions, 5);
      assert.equal(v2.status?.selectedNodes, undefined, "a status field left out is removed");
      assert.equal(v2.spec.port, 1030);
      assert.equal((await store.get("BGPPeer", nm))?.status?.expectedSessions, 5);
      await assert.rejects(store.applyStatus("BGPPeer", fresh(), { expectedSessions: 1 }), NotFoundError);
    });

    it("applyFinalizer adds and drops its own finalizer and leaves another writer's", async () => {
      const nm = fresh();
      const v1 = await store.create("BGPPeer", peer(nm, 1040));
      await store.mutate("BGPPeer", nm, (p) => {
        p.metadata.finalizers = ["example.com/other"];
        return p;
      });
      await store.applyFinalizer("BGPPeer", nm, "weft.dev/conformance", true, { uid: v1.metadata.uid });
      assert.deepEqual([...((await store.get("BGPPeer", nm))?.metadata.finalizers ?? [])].sort(), [
        "example.com/other",
        "weft.dev/conformance",
      ]);
      assert.equal(await store.delete("BGPPeer", nm), true);
      const marked = await store.get("BGPPeer", nm);
      assert.ok(marked?.metadata.deletionTimestamp, "kept, marked for deletion, while finalizers remain");
      await store.applyFinalizer("BGPPeer", nm, "weft.dev/conformance", false);
      assert.deepEqual((await store.get("BGPPeer", nm))?.metadata.finalizers, ["example.com/other"]);
      await store.mutate("BGPPeer", nm, (p) => {
        p.metadata.finalizers = [];
        return p;
      });
      await waitFor("the object to go with its last finalizer", async () =>
        (await store.get("BGPPeer", nm)) === undefined ? true : undefined,
      );
      await assert.rejects(store.applyFinalizer("BGPPeer", nm, "weft.dev/conformance", false), NotFoundError);
      await assert.rejects(store.applyFinalizer("BGPPeer", nm, "weft.dev/conformance", true), NotFoundError);
      await store.create("BGPPeer", peer(nm, 1041));
      await assert.rejects(
        store.applyFinalizer("BGPPeer", nm, "weft.dev/conformance", true, { uid: v1.metadata.uid }),
        ConflictError,
        "a finalizer meant for the deleted incarnation must not land on the new one",
      );
      assert.equal((await store.get("BGPPeer", nm))?.metadata.finalizers, undefined);
    });

    it("delete removes the object, is false when absent, and honours preconditions", async () => {
      const nm = fresh();
      const v1 = await store.create("BGPPeer", peer(nm));
      const v2 = await store.update("BGPPeer", { ...v1, spec: { ...v1.spec, port: 2 } });
      await assert.rejects(
        store.delete("BGPPeer", nm, { resourceVersion: v1.metadata.resourceVersion }),
        ConflictError,
      );
      await assert.rejects(
        store.delete("BGPPeer", nm, { uid: "00000000-0000-0000-0000-000000000000" }),
        ConflictError,
      );
      assert.ok(await store.get("BGPPeer", nm), "a failed precondition must not delete");
      assert.equal(
        await store.delete("BGPPeer", nm, {
          resourceVersion: v2.metadata.resourceVersion,
          uid: v2.metadata.uid,
        }),
        true,
      );
      assert.equal(await store.get("BGPPeer", nm), undefined);
      assert.equal(await store.delete("BGPPeer", nm), false);
    });

    it("watch delivers ADDED, MODIFIED and DELETED in order, and nothing after stop", async () => {
      const { resourceVersion } = await store.list("BGPPeer");
      const nm = fresh();
      const events: WatchEvent<BGPPeer>[] = [];
      const stop = store.watch("BGPPeer", resourceVersion, (ev) => {
        if (ev.type === "BOOKMARK") return;
        if ("object" in ev && ev.object.metadata.name !== nm) return;
        events.push(ev);
      });
      try {
        const v1 = await store.create("BGPPeer", peer(nm, 1));
        await store.update("BGPPeer", { ...v1, spec: { ...v1.spec, port: 2 } });
        await store.delete("BGPPeer", nm);
        await waitFor("three watch events", () => (events.length >= 3 ? true : undefined), 20_000);
        assert.deepEqual(
          events.map((e) => e.type),
          ["ADDED", "MODIFIED", "DELETED"],
        );
        const [added, modified] = events as Array<{ object: BGPPeer }>;
        assert.equal(added?.object.spec.port, 1);
        assert.equal(modified?.object.spec.port, 2);
      } finally {
        stop();
      }
      const seen = events.length;
      await store.create("BGPPeer", peer(nm, 3));
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(events.length, seen, "events arrived after stop()");
    });

    it("watch from an earlier resourceVersion replays the changes made since", async () => {
      const nm = fresh();
      const v1 = await store.create("BGPPeer", peer(nm, 1));
      const v2 = await store.update("BGPPeer", { ...v1, spec: { ...v1.spec, port: 2 } });
      await store.update("BGPPeer", { ...v2, spec: { ...v2.spec, port: 3 } });
      const ports: number[] = [];
      const stop = store.watch("BGPPeer", v1.metadata.resourceVersion, (ev) => {
        if ((ev.type === "ADDED" || ev.type === "MODIFIED") && ev.object.metadata.name === nm) {
          ports.push(ev.object.spec.port ?? 0);
        }
      });
      try {
        await waitFor("replayed events", () => (ports.length >= 2 ? true : undefined), 20_000);
        assert.deepEqual(ports, [2, 3]);
      } finally {
        stop();
      }
    });

    it("watch from a resourceVersion whose history is gone reports EXPIRED, and nothing after it", async () => {
      const rv = opts.expiredResourceVersion ? await opts.expiredResourceVersion(store) : "1";
      const events: WatchEvent<BGPPeer>[] = [];
      const stop = store.watch("BGPPeer", rv, (ev) => {
        events.push(ev);
      });
      try {
        await waitFor("EXPIRED", () => (events.some((e) => e.type === "EXPIRED") ? true : undefined), 20_000);
        const last = events.at(-1);
        assert.equal(
          last?.type,
          "EXPIRED",
          `terminal event must come last: ${JSON.stringify(events.map((e) => e.type))}`,
        );
        assert.equal(events.filter((e) => e.type === "EXPIRED" || e.type === "CLOSED").length, 1);
      } finally {
        stop();
      }
    });

    it("mutate applies a change with compare-and-swap and skips the write when nothing changed", async () => {
      const nm = fresh();
      const v1 = await store.create("BGPPeer", peer(nm, 10));
      const v2 = await store.mutate("BGPPeer", nm, (o) => {
        o.spec.port = 11;
        return o;
      });
      assert.equal(v2.spec.port, 11);
      assert.notEqual(v2.metadata.resourceVersion, v1.metadata.resourceVersion);
      const v3 = await store.mutate("BGPPeer", nm, (o) => o);
      assert.equal(v3.metadata.resourceVersion, v2.metadata.resourceVersion, "a no-op must not write");
      const v4 = await store.mutate(
        "BGPPeer",
        nm,
        (o) => {
          o.status = { expectedSessions: 7 };
          return undefined; // changed in place
        },
        { status: true },
      );
      assert.equal(v4.status?.expectedSessions, 7);
      await assert.rejects(
        store.mutate("BGPPeer", fresh(), (o) => o),
        NotFoundError,
      );
    });

    it("mutate with 10 concurrent writers loses no update", async () => {
      const nm = fresh();
      await store.create("BGPPeer", peer(nm, 1));
      const writers = 10;
      const perWriter = 5;
      const key = "weft.dev/test-writes";
      await Promise.all(
        Array.from({ length: writers }, async (_, w) => {
          for (let i = 0; i < perWriter; i++) {
            await store.mutate(
              "BGPPeer",
              nm,
              (o) => {
                const done: string[] = JSON.parse(o.metadata.annotations?.[key] ?? "[]");
                done.push(`${w}.${i}`);
                o.metadata.annotations = { ...o.metadata.annotations, [key]: JSON.stringify(done) };
                o.spec.port = (o.spec.port ?? 0) + 1;
                return o;
              },
              { retries: 100 },
            );
          }
        }),
      );
      const got = await store.get("BGPPeer", nm);
      assert.ok(got);
      const done: string[] = JSON.parse(got.metadata.annotations?.[key] ?? "[]");
      assert.equal(done.length, writers * perWriter, "every write must be there exactly once");
      assert.equal(new Set(done).size, writers * perWriter);
      assert.equal(got.spec.port, 1 + writers * perWriter);
    });

    it("mutate gives up after its retries with an error naming the object", async () => {
      const nm = fresh();
      await store.create("BGPPeer", peer(nm, 1));
      let calls = 0;
      await assert.rejects(
        store.mutate(
          "BGPPeer",
          nm,
          async (o) => {
            calls++;
            // A competing writer gets in between every read and write.
            const cur = await store.get("BGPPeer", nm);
            if (cur)
              await store.update("BGPPeer", {
                ...cur,
                spec: { ...cur.spec, port: (cur.spec.port ?? 0) + 1 },
              });
            o.spec.asNumber = 65000;
            return o;
          },
          { retries: 2, baseBackoffMs: 1 },
        ),
        (err: unknown) => {
          assert.ok(err instanceof TooManyConflictsError, String(err));
          assert.equal(err.attempts, 3);
          assert.match(err.message, new RegExp(`BGPPeer ${nm}`));
          return true;
        },
      );
      assert.equal(calls, 3);
      assert.equal((await store.get("BGPPeer", nm))?.spec.asNumber, 64512);
    });

    it("list and watch with a field selection hand out only the selected node's blocks", async () => {
      // An agent's view: its own node's IPAMBlocks (spec.affinity), none of the other nodes'.
      const octet = randomBytes(1)[0]!;
      const block = (i: number, affinity: string): IPAMBlock => {
        const cidr = `198.18.${octet}.${i * 64}/26`;
        return {
          apiVersion: API_VERSION,
          kind: "IPAMBlock",
          metadata: { name: blockName(cidr) },
          spec: { cidr, pool: `${prefix}-pool`, affinity, allocations: [], sequence: 0 },
        };
      };
      const mine = `${prefix}-node-a`;
      const theirs = `${prefix}-node-b`;
      const made: string[] = [];
      try {
        for (const [i, node] of [mine, theirs].entries()) {
          made.push((await store.create("IPAMBlock", block(i, node))).metadata.name);
        }
        const listed = await store.list("IPAMBlock", ownBlocks(mine));
        assert.deepEqual(
          listed.items.map((b) => b.spec.affinity),
          [mine],
        );
        const seen: string[] = [];
        const stop = store.watch(
          "IPAMBlock",
          listed.resourceVersion,
          (ev) => {
            if ("object" in ev) seen.push(`${ev.type} ${ev.object.spec.affinity}`);
          },
          ownBlocks(mine),
        );
        try {
          made.push((await store.create("IPAMBlock", block(2, theirs))).metadata.name);
          made.push((await store.create("IPAMBlock", block(3, mine))).metadata.name);
          await waitFor(
            "the selected node's new block on the watch",
            () => (seen.length >= 1 ? true : undefined),
            20_000,
          );
          // The other node's block was created first: had it been delivered, it would be here.
          assert.deepEqual(seen, [`ADDED ${mine}`]);
        } finally {
          stop();
        }
      } finally {
        await Promise.all(made.map((nm) => store.delete("IPAMBlock", nm)));
      }
    });

    it("counts its writes in weft_datastore_writes_total{kind,verb}", async () => {
      const count = async (verb: string) => {
        const m = register.getSingleMetric("weft_datastore_writes_total");
        assert.ok(m, "weft_datastore_writes_total is not registered");
        const v = (await m.get()).values.find((x) => x.labels.kind === "BGPPeer" && x.labels.verb === verb);
        return v?.value ?? 0;
      };
      const before = {
        create: await count("create"),
        update: await count("update"),
        delete: await count("delete"),
      };
      const nm = fresh();
      const v1 = await store.create("BGPPeer", peer(nm));
      await store.update("BGPPeer", { ...v1, spec: { ...v1.spec, port: 5 } });
      await store.delete("BGPPeer", nm);
      // Other tests of this file may write concurrently, so at least one more of each.
      assert.ok((await count("create")) >= before.create + 1);
      assert.ok((await count("update")) >= before.update + 1);
      assert.ok((await count("delete")) >= before.delete + 1);
    });
  });
}
