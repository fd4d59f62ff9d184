/**
 * Just enough of the Dockerfile and .dockerignore formats to check the image's recipe without a
 * container engine: stages, their instructions (continuation lines joined), COPY sources, and
 * whether a context path survives .dockerignore. Pure.
 */

export interface Instruction {
  /** Upper-case keyword: FROM, RUN, COPY, ... */
  op: string;
  /** Everything after the keyword, continuation lines joined with spaces. */
  args: string;
  line: number;
}

export interface Stage {
  /** The image or stage it starts from (build args not substituted). */
  from: string;
  name?: string;
  instructions: Instruction[];
}

export interface Dockerfile {
  /** ARGs before the first FROM, with their defaults. */
  globalArgs: Record<string, string>;
  stages: Stage[];
}

export function parseDockerfile(text: string): Dockerfile {
  const instructions: Instruction[] = [];
  let buf = "";
  let start = 0;
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (buf === "" && (line === "" || line.startsWith("#"))) return;
    if (buf !== "" && line.startsWith("#")) return; // comments inside a continued instruction
    if (buf === "") start = i + 1;
    if (line.endsWith("\\")) {
      buf += `${line.slice(0, -1).trim()} `;
      return;
    }
    buf += line;
    const m = /^(\S+)\s*(.*)$/s.exec(buf);
    if (m) instructions.push({ op: (m[1] ?? "").toUpperCase(), args: (m[2] ?? "").trim(), line: start });
    buf = "";
  });
  const out: Dockerfile = { globalArgs: {}, stages: [] };
  for (const ins of instructions) {
    if (ins.op === "FROM") {
      const m = /^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?/i.exec(ins.args);
      out.stages.push({ from: m?.[1] ?? "", ...(m?.[2] ? { name: m[2] } : {}), instructions: [] });
      continue;
    }
    const stage = out.stages[out.stages.length - 1];
    if (!stage) {
      if (ins.op === "ARG") {
        const [k, v] = ins.args.split("=", 2);
        if (k) out.globalArgs[k.trim()] = (v ?? "").trim();
      }
      continue;
    }
    stage.instructions.push(ins);
  }
  return out;
}

/** Substitutes ${NAME} and $NAME from the given build args. */
export function substitute(s: string, args: Record<string, string>): string {
  return s.replace(
    /\$\{(\w+)\}|\$(\w+)/g,
    (whole, a?: string, b?: string) => args[(a ?? b) as string] ?? whole,
  );
}

export interface CopySpec {
  /** --from=stage, when copying from another stage or image. */
  from?: string;
  sources: string[];
  dest: string;
  line: number;
}

/** COPY and ADD instructions of a stage, in shell or JSON form. */
export function copies(stage: Stage): CopySpec[] {
  const out: CopySpec[] = [];
  for (const ins of stage.instructions) {
    if (ins.op !== "COPY" && ins.op !== "ADD") continue;
    let rest = ins.args;
    let from: string | undefined;
    for (;;) {
      const flag = /^--(\w[\w-]*)(?:=(\S+))?\s+/.exec(rest);
      if (!flag) break;
      if (flag[1] === "from") from = flag[2];
      rest = rest.slice(flag[0].length);
    }
    const words = rest.startsWith("[") ? (JSON.parse(rest) as string[]) : rest.split(/\s+/);
    const dest = words.pop() ?? "";
    out.push({ ...(from ? { from } : {}), sources: words, dest, line: ins.line });
  }
  return out;
}

/** The exec form (JSON array) of CMD / ENTRYPOINT, or the shell form split on spaces. */
export function execForm(args: string): string[] {
  return args.startsWith("[") ? (JSON.parse(args) as string[]) : args.split(/\s+/);
}

function globToRegExp(glob: string): RegExp {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === "*" && glob[i + 1] === "*") {
      re += ".*";
      i++;
      if (glob[i + 1] === "/") i++;
    } else if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else re += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/**
 * Whether .dockerignore keeps `path` (relative to the context) in the build context. The last
 * matching pattern wins; `!` re-includes; a pattern that matches a directory covers what is in it.
 */
export function keptByDockerignore(path: string, ignoreText: string): boolean {
  const patterns = ignoreText
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
  const clean = path.replace(/^\.\//, "").replace(/\/$/, "");
  const prefixes = clean.split("/").map((_, i, parts) => parts.slice(0, i + 1).join("/"));
  let kept = true;
  for (const raw of patterns) {
    const negate = raw.startsWith("!");
    const pattern = (negate ? raw.slice(1) : raw).replace(/^\//, "").replace(/\/$/, "");
    const re = globToRegExp(pattern);
    if (prefixes.some((p) => re.test(p))) kept = negate;
  }
  return kept;
}
