/**
 * Files under `$WHARF_HOME` that more than one service reads or writes: their layout lives here so
 * the builder (which writes them) and the controller (which serves them) share no code but this.
 */
import { join } from 'node:path'

/** Where a build's full output is kept: `$WHARF_HOME/builds/<build id>.log` (read by `builds:info`). */
export function buildLogPath(home: string, build: string): string {
  return join(home, 'builds', `${build}.log`)
}

/** The builder's SSH host key (private; the public one is beside it with `.pub`). */
export function hostKeyPath(home: string): string {
  return join(home, 'builder', 'ssh_host_ed25519_key')
}
