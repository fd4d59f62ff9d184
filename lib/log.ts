import winston from "winston";

/**
 * One logger per process. JSON when running in a cluster (or when WEFT_LOG_FORMAT=json) so log
 * pipelines can parse it; readable lines on a terminal.
 */
export type Logger = winston.Logger;

const inCluster = Boolean(process.env.KUBERNETES_SERVICE_HOST);

export function createLogger(component: string, level = process.env.WEFT_LOG_LEVEL ?? "info"): Logger {
  const json =
    process.env.WEFT_LOG_FORMAT === "json" || (inCluster && process.env.WEFT_LOG_FORMAT !== "text");
  const format = json
    ? winston.format.combine(winston.format.timestamp(), winston.format.json())
    : winston.format.combine(
        winston.format.timestamp({ format: "HH:mm:ss.SSS" }),
        winston.format.printf(({ timestamp, level: lvl, message, component: c, ...rest }) => {
          const fields = Object.entries(rest)
            .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
            .join(" ");
          return `${timestamp} ${lvl.toUpperCase().padEnd(5)} [${c}] ${message}${fields ? ` ${fields}` : ""}`;
        }),
      );
  return winston.createLogger({
    level,
    defaultMeta: { component },
    format,
    transports: [
      new winston.transports.Console({ stderrLevels: ["error", "warn", "info", "debug", "verbose"] }),
    ],
  });
}
