import type { CliCommand } from '../command';

// Each verb registers here; keep the list sorted by name.
export const commands: CliCommand[] = [];
