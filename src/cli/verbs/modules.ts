// grass modules: the target's loaded modules from memory, as the guest's /proc/modules shows them.
import { listModules, procModulesLine } from '../../kernel/modules/modules';
import type { CliCommand } from '../command';
import { modelFromSession } from './kernel-target';
import { hex, targetFlagsUsage, targetVerb } from './target-flags';

const usage = `usage: grass modules --target ADDR [--key-file F] [--json]

Lists loaded kernel modules read from the target's memory (the kernel's \`modules\` list, laid
out by its BTF), one /proc/modules line each: name size refcount used-by state address [taints].
--json prints {"modules":[{name,size,refcount,usedBy,state,address,textSize,taints,structAddress}]}
with addresses as hex strings.

${targetFlagsUsage}`;

export const modulesCommand: CliCommand = targetVerb({
  name: 'modules',
  summary: 'the target kernel\'s loaded modules (as /proc/modules)',
  usage,
  async run(session) {
    const modules = await listModules(await modelFromSession(session));
    return {
      json: { modules: modules.map((m) => ({ ...m, address: hex(m.address), structAddress: hex(m.structAddress) })) },
      text: () => modules.map(procModulesLine),
    };
  },
});
