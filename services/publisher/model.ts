/**
 * The publisher's pure part: what a Wharf container is (from its labels) and how a death is
 * classified. Which runtime events a container's state on its app's stream allows is the runtime
 * decider's (domain/runtime/decider.ts).
 */
import { constants } from 'node:os'

/** A signal as a number: `15`, `SIGTERM`, `TERM` -> 15; undefined when unknown. */
export function signalNumber(signal: string | undefined): number | undefined {
  if (!signal) return undefined
  if (/^[0-9]+$/.test(signal)) return Number(signal)
  const name = (signal.toUpperCase().startsWith('SIG') ? signal.toUpperCase() : `SIG${signal.toUpperCase()}`) as keyof typeof constants.signals
  return constants.signals[name]
}

/** How a container ended, from what the publisher saw before its `die`. */
export interface Death {
  exitCode: number
  /** A stop was asked (a kill with the container's stop signal: what Swarm and `docker stop` send first). */
  stopAsked: boolean
  /** The engine reported an `oom` event for it (or State.OOMKilled). */
  oom: boolean
}

/**
 * A death is a crash when nobody asked for it and it failed (exit code != 0), or when the kernel
 * killed it for memory, asked or not. A clean exit nobody asked for is a stop.
 */
export function classifyDeath(d: Death): { kind: 'stopped' } | { kind: 'crashed'; exitCode: number; reason: string } {
  if (d.oom) return { kind: 'crashed', exitCode: d.exitCode, reason: 'out of memory: the kernel killed it (OOM)' }
  if (d.stopAsked || d.exitCode === 0) return { kind: 'stopped' }
  const signal = d.exitCode > 128 ? Object.entries(constants.signals).find(([, n]) => n === d.exitCode - 128)?.[0] : undefined
  return { kind: 'crashed', exitCode: d.exitCode, reason: signal ? `killed by ${signal} (exit code ${d.exitCode})` : `exited with code ${d.exitCode}` }
}
