import type { Command } from 'commander'

/** `wharf events`: the platform's events the user may see, or a live tail with -f. */
export function eventsTopic(_program: Command): void {}
