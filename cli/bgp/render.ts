import type { NodeTopology, Topology } from "../../bgp/index.js";

/** `weftctl bgp topology` as text: one line per session. */
export function topologyText(t: Topology): string {
  const lines = [
    `AS ${t.asNumber}; mesh ${t.meshEnabled ? "on" : "off"}; reflectors: ${t.reflectors.length ? t.reflectors.join(", ") : "none"}; sessions: ${t.sessions.length}`,
  ];
  for (const r of t.reflectors) lines.push(`reflector ${r}: ${t.reflectorReasons[r] ?? ""}`);
  for (const s of t.sessions) {
    const arrow = s.kind === "rr-client" ? "->" : "<->";
    lines.push(`${s.kind.padEnd(9)} ${s.a} (${s.aIP}) ${arrow} ${s.b} (${s.bIP})  [${s.source}]`);
  }
  for (const p of t.problems) lines.push(`problem: ${p.kind}/${p.name}: ${p.message}`);
  return `${lines.join("\n")}\n`;
}

function dotEscape(s: string): string {
  return s.replace(/[\\"]/g, (c) => `\\${c}`).replace(/[\r\n]/g, " ");
}

function dotQuote(s: string): string {
  return `"${dotEscape(s)}"`;
}

/** `weftctl bgp topology --dot`: Graphviz, reflectors as double circles, external peers as boxes. */
export function topologyDot(t: Topology): string {
  const out = ["graph weft_bgp {", "  node [shape=ellipse];"];
  for (const name of Object.keys(t.nodes)) {
    const n = t.nodes[name] as NodeTopology;
    const attrs = n.routeReflectorClusterID
      ? ` [shape=doublecircle, label="${dotEscape(name)}\\nRR ${n.routeReflectorClusterID}"]`
      : "";
    out.push(`  ${dotQuote(name)}${attrs};`);
  }
  const externals = new Set(t.sessions.filter((s) => s.external).map((s) => s.b));
  for (const e of externals) out.push(`  ${dotQuote(`peer:${e}`)} [shape=box, label=${dotQuote(e)}];`);
  for (const s of t.sessions) {
    const b = s.external ? `peer:${s.b}` : s.b;
    const style = s.kind === "rr-client" ? " [style=dashed]" : s.kind === "external" ? " [style=bold]" : "";
    out.push(`  ${dotQuote(s.a)} -- ${dotQuote(b)}${style};`);
  }
  out.push("}");
  return `${out.join("\n")}\n`;
}
