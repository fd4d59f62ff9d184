import type { Command } from "../command.js";
import { ipamCheck } from "./check.js";
import { ipamMigrate } from "./migrate.js";
import { ipamRelease } from "./release.js";
import { ipamShow } from "./show.js";

export const ipamCommands: Command[] = [ipamShow, ipamCheck, ipamRelease, ipamMigrate];
