import type { Command } from "../command.js";
import { flannelStatusCommand } from "./status.js";

export const flannelCommands: Command[] = [flannelStatusCommand];
