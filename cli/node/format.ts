import type { NodeNetworkStatus } from "../../api/index.js";
import { table } from "../table.js";

/** `weftctl node status` as text (pure): like `calicoctl node status`, plus conditions and counts. */

/** 3d4h, 5m3s, 42s: how long a session has been in its state. */
export function formatAge(since: string | undefined, now: Date): string {
  if (!since) return "-";
  const t = Date.parse(since);
  if (Number.isNaN(t)) return since;
  let s = Math.max(0, Math.floor((now.getTime() - t) / 1000));
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  if (d > 0) return `${d}d${h}h`;
  if (h > 0) return `${h}h${m}m`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}

export function formatNodeStatus(nns: NodeNetworkStatus, now = new Date()): string {
  const st = nns.status ?? {};
  const out: string[] = [];
  const name = nns.spec?.node ?? nns.metadata.name;
  const ready = st.conditions?.find((c) => c.type === "Ready");
  out.push(`Node ${name}: ${ready ? `Ready=${ready.status} (${ready.reason})` : "no status reported yet"}`);
  const owned = st.owned;
  out.push(
    `Owned: ${owned ? `${owned.routes} routes, ${owned.neighbors} neighbors, ${owned.fdb} FDB entries` : "-"}; ` +
      `intents applied: ${Object.keys(st.appliedIntents ?? {}).length}; last sync: ${st.lastSyncTime ?? "-"}`,
  );
  out.push("");
  const sessions = st.bgpSessions ?? [];
  if (sessions.length === 0) out.push("BGP sessions: none");
  else {
    out.push(
      `BGP sessions (${sessions.filter((s) => s.state === "Established").length}/${sessions.length} established):`,
    );
    out.push(
      table(
        ["PEER", "PEER ADDRESS", "AS", "STATE", "SINCE", "IMPORTED", "EXPORTED", "BFD", "INFO"],
        [...sessions]
          .sort((a, b) => (a.peer < b.peer ? -1 : a.peer > b.peer ? 1 : 0))
          .map((s) => [
            s.peer,
            s.peerIP,
            s.asNumber,
            s.state,
            formatAge(s.since, now),
            s.routesImported ?? "-",
            s.routesExported ?? "-",
            s.bfd ?? "-",
            s.info ?? "",
          ]),
      ),
    );
  }
  out.push("");
  const conds = st.conditions ?? [];
  if (conds.length === 0) out.push("Conditions: none");
  else {
    out.push("Conditions:");
    out.push(
      table(
        ["TYPE", "STATUS", "REASON", "AGE", "MESSAGE"],
        conds.map((c) => [c.type, c.status, c.reason, formatAge(c.lastTransitionTime, now), c.message]),
      ),
    );
  }
  return `${out.join("\n")}\n`;
}
