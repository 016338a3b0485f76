import type { Command } from 'commander'
import { api } from './common.js'
import { CliError } from '../client.js'

/** `--at <time|seq>`: answer as of a point of the event log. */
export function withAt(cmd: Command): Command {
  return cmd.option('--at <time|seq>', 'as it was at this point of the event log: a seq (42) or a time (2026-12-07T05:00:00Z; without a zone: local time)')
}

/**
 * The API's `at` of a `--at` value: a seq as is, a time as ISO 8601 in UTC (a time without a zone is
 * read as local time here, where the user is, not on the controller). `WHARF_INVALID` when it is neither.
 */
export function atParam(at: string): string {
  const text = at.trim()
  if (/^[0-9]+$/.test(text)) {
    if (Number(text) < 1) throw new CliError('WHARF_INVALID', `--at ${text}: the log starts at seq 1`)
    return text
  }
  // Date.parse reads more than ISO 8601 (e.g. "2026-12-07 05:00"); a bare number is a seq, above.
  const ms = /^[0-9]{4}-[0-9]{2}-[0-9]{2}/.test(text) ? Date.parse(text) : Number.NaN
  if (Number.isNaN(ms)) throw new CliError('WHARF_INVALID', `--at ${JSON.stringify(at)}: expected a seq (42) or a time (2026-12-07T05:00:00Z)`)
  return new Date(ms).toISOString()
}

/** The point an answer is as of, from the `wharf-at-*` headers the controller sets on an `at` answer. */
export interface AsOf {
  seq: number
  time: string
}

/**
 * GETs `path` of the API, as of `at` when given: the body (the same shape as without `at`), and the
 * point the controller resolved `at` to.
 */
export async function getAt<T>(path: string, at: string | undefined): Promise<{ body: T; asOf?: AsOf }> {
  if (at === undefined) return { body: await api().call<T>('GET', path) }
  let asOf: AsOf | undefined
  const sep = path.includes('?') ? '&' : '?'
  const body = await api().call<T>('GET', `${path}${sep}at=${encodeURIComponent(atParam(at))}`, undefined, {
    onHeaders: (h) => {
      const seq = Number(h['wharf-at-seq'])
      const time = h['wharf-at-time']
      if (Number.isSafeInteger(seq) && typeof time === 'string') asOf = { seq, time }
    },
  })
  if (!asOf) throw new CliError('WHARF_INVALID', 'the controller does not answer --at (an older version?)')
  return { body, asOf }
}

/** The line a human answer starts with under `--at`. */
export function asOfLine(asOf: AsOf): string {
  return `as of ${asOf.time} (seq ${asOf.seq})`
}
