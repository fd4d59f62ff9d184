import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { PROGRAM_LAYERS } from "../../devenv/layers.js";
import { repoRoot } from "../../devenv/tools.js";
import { helmTemplate } from "./chart-support.js";
import {
  copies,
  execForm,
  keptByDockerignore,
  parseDockerfile,
  type Stage,
  substitute,
} from "./dockerfile-support.js";
import { distReferences, PROGRAMS } from "./programs-support.js";

const dockerfileText = readFileSync(join(repoRoot, "Dockerfile"), "utf8");
const ignoreText = readFileSync(join(repoRoot, ".dockerignore"), "utf8");
const df = parseDockerfile(dockerfileText);
const runtime = df.stages[df.stages.length - 1] as Stage;
const runs = (s: Stage) =>
  s.instructions
    .filter((i) => i.op === "RUN")
    .map((i) => i.args)
    .join("\n");

describe("Dockerfile parser", () => {
  test("joins continuation lines, skips comments, reads stages and COPY forms", () => {
    const d = parseDockerfile(
      [
        "ARG BASE=debian:12",
        // biome-ignore lint/suspicious/noTemplateCurlyInString: Dockerfile syntax, not a template
        "FROM ${BASE} AS one",
        "# comment",
        "RUN a \\",
        "  # inner comment",
        "  && b",
        'COPY ["x y", "z", "/d/"]',
        "FROM one",
        "COPY --from=one --chown=1:1 /a /b",
      ].join("\n"),
    );
    assert.deepEqual(d.globalArgs, { BASE: "debian:12" });
    assert.equal(substitute(d.stages[0]?.from ?? "", d.globalArgs), "debian:12");
    assert.equal(d.stages[0]?.name, "one");
    assert.equal(d.stages[0]?.instructions[0]?.args, "a && b");
    assert.deepEqual(copies(d.stages[0] as Stage)[0], { sources: ["x y", "z"], dest: "/d/", line: 7 });
    assert.deepEqual(copies(d.stages[1] as Stage)[0], { from: "one", sources: ["/a"], dest: "/b", line: 9 });
  });

  test(".dockerignore: last match wins, ! re-includes, directories cover their contents", () => {
    const ig = "*\n!api/\n**/*.test.ts\n";
    assert.equal(keptByDockerignore("api/ippool.ts", ig), true);
    assert.equal(keptByDockerignore("api/x.test.ts", ig), false);
    assert.equal(keptByDockerignore("node_modules/yaml/index.js", ig), false);
    assert.equal(keptByDockerignore(".git/config", ig), false);
  });
});

describe("Dockerfile", () => {
  test("is multi-stage and every stage starts from a pinned Node LTS on bookworm-slim", () => {
    assert.ok(df.stages.length >= 2, "a build stage and a runtime stage");
    for (const s of df.stages) {
      const from = substitute(s.from, df.globalArgs);
      if (df.stages.some((o) => o.name === from)) continue; // FROM an earlier stage
      const m = /^node:(\d+)\.(\d+)\.(\d+)-bookworm-slim(@sha256:[0-9a-f]{64})?$/.exec(from);
      assert.ok(
        m,
        `FROM ${from}: want node:<major.minor.patch>-bookworm-slim (a full version, never latest)`,
      );
      assert.equal(Number(m[1]) % 2, 0, `Node ${m[1]} is not an LTS line (even majors are)`);
      assert.ok(Number(m[1]) >= 20, "package.json engines: node >= 20");
    }
    assert.match(dockerfileText, /digest/i, "a comment says how to pin the base image by digest");
  });

  test("every COPY source exists in the repository and survives .dockerignore", () => {
    const stageNames = new Set(df.stages.map((s) => s.name).filter(Boolean));
    let checked = 0;
    for (const s of df.stages) {
      for (const c of copies(s)) {
        if (c.from) {
          assert.ok(stageNames.has(c.from), `line ${c.line}: COPY --from=${c.from} names no earlier stage`);
          continue;
        }
        for (const src of c.sources) {
          assert.ok(existsSync(join(repoRoot, src)), `line ${c.line}: COPY source ${src} does not exist`);
          assert.ok(
            keptByDockerignore(src, ignoreText),
            `line ${c.line}: ${src} is excluded by .dockerignore`,
          );
          checked++;
        }
      }
    }
    assert.ok(checked >= 3, "the build copies package.json, the lock file and sources");
  });

  test("the build stage copies every directory the programs import from", () => {
    const copied = new Set(
      (df.stages[0] ? copies(df.stages[0]) : []).flatMap((c) => c.sources.map((s) => s.replace(/\/$/, ""))),
    );
    // what a program's module graph can reach: everything but tests, lab and benchmarks
    for (const dir of PROGRAM_LAYERS) {
      if (existsSync(join(repoRoot, dir)))
        assert.ok(copied.has(dir), `the build stage does not COPY ${dir}/`);
    }
  });

  test("the runtime stage installs production dependencies only, bird2 and iproute2, and runs unprivileged", () => {
    const r = runs(runtime);
    assert.match(r, /npm ci\b[^\n]*--omit=dev/, "npm ci --omit=dev");
    assert.match(r, /apt-get install[^\n]*\bbird2\b/, "bird2");
    assert.match(r, /apt-get install[^\n]*\biproute2\b/, "iproute2");
    assert.match(r, /rm -rf \/var\/lib\/apt\/lists/, "apt lists removed in the same layer");
    const user = runtime.instructions.filter((i) => i.op === "USER").pop();
    assert.ok(user, "the runtime stage sets USER");
    assert.doesNotMatch(user.args, /^(0|root)(:|$)/, "the default user is not root");
    assert.match(user.args, /^\d+(:\d+)?$/, "a numeric USER, so runAsNonRoot can verify it");
  });

  test("the image's command and every chart command run programs the build produces", async () => {
    const cmd = runtime.instructions.filter((i) => i.op === "CMD" || i.op === "ENTRYPOINT");
    assert.ok(cmd.length > 0, "CMD or ENTRYPOINT");
    const argv = execForm(cmd[cmd.length - 1]?.args ?? "");
    assert.equal(argv[0], "node", "the program is chosen by `node dist/...`");
    const chart = await helmTemplate("weft", "kube-system", { mode: "bgp" });
    const refs = new Set([...distReferences(cmd.map((c) => c.args).join("\n")), ...distReferences(chart)]);
    assert.ok(refs.size >= 3, `controller, agent and CNI installer are referenced: ${[...refs].join(", ")}`);
    for (const ref of refs) {
      const p = PROGRAMS.find((x) => x.dist === ref);
      assert.ok(p, `${ref} is not one of the image's programs (test/ship/programs-support.ts)`);
    }
    assert.match(dockerfileText, /node dist\/cni\/bundle\.js/, "the build makes the CNI plugin bundle");
  });
});
