import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { NotFoundError } from "../../datastore/index.js";
import { type AuditReport, type LeakedAddress, releaseIfSequence } from "../../ipam/index.js";
import { type Command, UsageError } from "../command.js";

function readReport(file: string): LeakedAddress[] {
  const report = JSON.parse(readFileSync(file, "utf8")) as Partial<AuditReport>;
  if (!Array.isArray(report.leaked))
    throw new UsageError(`${file} is not a report of 'weftctl ipam check -o json'`);
  for (const l of report.leaked) {
    if (
      typeof l.block !== "string" ||
      typeof l.handle !== "string" ||
      !Number.isInteger(l.ordinal) ||
      !Number.isInteger(l.sequence)
    ) {
      throw new UsageError(
        `${file}: leaked entry ${JSON.stringify(l)} lacks block, handle, ordinal or sequence`,
      );
    }
  }
  return report.leaked;
}

/**
 * `weftctl ipam release --from-report FILE`: frees exactly the leaked addresses of a check report,
 * each only if the same handle still holds it at the same sequence (an address reused since the
 * report stays). One compare-and-swap write per block.
 */
export const ipamRelease: Command = {
  path: ["ipam", "release"],
  summary: "release the leaked addresses of a 'weftctl ipam check -o json' report",
  usage: "weftctl ipam release --from-report FILE [--dry-run]",
  async run(ctx, args) {
    const { values } = parseArgs({
      args,
      options: { "from-report": { type: "string" }, "dry-run": { type: "boolean" } },
    });
    const file = values["from-report"];
    if (!file) throw new UsageError("--from-report FILE is required");
    const leaked = readReport(file);
    const byBlock = new Map<string, LeakedAddress[]>();
    for (const l of leaked) byBlock.set(l.block, [...(byBlock.get(l.block) ?? []), l]);
    const store = ctx.store();
    let released = 0;
    const skipped: string[] = [];
    for (const [block, entries] of byBlock) {
      const freed = new Set<string>();
      try {
        await store.mutate("IPAMBlock", block, (b) => {
          freed.clear();
          let spec = b.spec;
          for (const e of entries) {
            const r = releaseIfSequence(spec, e.handle, e.ordinal, e.sequence);
            spec = r.spec;
            for (const a of r.released) freed.add(`${a.ordinal}`);
          }
          if (values["dry-run"]) return b;
          b.spec = spec;
          return b;
        });
      } catch (err) {
        if (!(err instanceof NotFoundError)) throw err;
      }
      for (const e of entries) {
        if (freed.has(`${e.ordinal}`)) {
          released++;
          ctx.out(`${values["dry-run"] ? "would release" : "released"} ${e.ip} (${e.handle})`);
        } else skipped.push(`${e.ip} (${e.handle}): no longer held at sequence ${e.sequence}, left alone`);
      }
    }
    for (const s of skipped) ctx.out(`skipped ${s}`);
    ctx.out(
      `${values["dry-run"] ? "would release" : "released"} ${released} of ${leaked.length} address(es)`,
    );
    return 0;
  },
};
