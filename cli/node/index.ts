import type { Command } from "../command.js";
import { nodeStatusCommand } from "./status.js";

export const nodeCommands: Command[] = [nodeStatusCommand];
