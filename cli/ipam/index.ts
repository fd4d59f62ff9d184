import type { Command } from "../command.js";
import { ipamCheck } from "./check.js";
import { ipamRelease } from "./release.js";
import { ipamShow } from "./show.js";

export const ipamCommands: Command[] = [ipamShow, ipamCheck, ipamRelease];
