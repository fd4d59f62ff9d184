import type { Command } from "../command.js";
import { bgpTopologyCommand } from "./topology.js";

export const bgpCommands: Command[] = [bgpTopologyCommand];
