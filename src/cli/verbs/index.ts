import type { CliCommand } from '../command';
import { agentCommand } from './agent';
import { btCommand } from './bt';
import { btfCommand } from './btf';
import { decodeCommand } from './decode';
import { describeCommand } from './describe';
import { detectCommand } from './detect';
import { dmesgCommand } from './dmesg';
import { heartbeatCommand } from './heartbeat';
import { metricsCommand } from './metrics';
import { modulesCommand } from './modules';
import { monitorCommand } from './monitor';
import { psCommand } from './ps';
import { readCommand } from './read';
import { reportCommand } from './report';
import { saveVmcoreCommand } from './save-vmcore';
import { testbedCommand } from './testbed';

// Each verb registers here; keep the list sorted by name.
export const commands: CliCommand[] = [agentCommand, btCommand, btfCommand, decodeCommand, describeCommand, detectCommand, dmesgCommand, heartbeatCommand, metricsCommand, modulesCommand, monitorCommand, psCommand, readCommand, reportCommand, saveVmcoreCommand, testbedCommand];
