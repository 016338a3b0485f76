import type { Command } from 'commander'
import { formatLine, type LogLine } from '../../logs/line.js'
import { CliError, type ApiClient } from '../client.js'
import { printJson } from '../output.js'
import { openEventStream, sseData } from '../sse.js'
import { api, appPath, withApp } from './common.js'

/** `1h`, `30m`, `2d`, `45s` ago, or a time Date.parse reads: as RFC 3339. */
export function sinceTime(raw: string, now = Date.now()): string {
  const m = /^(\d{1,6})([smhd])$/.exec(raw.trim())
  if (m) return new Date(now - Number(m[1]) * { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd']).toISOString()
  const t = Date.parse(raw)
  if (Number.isNaN(t)) throw new CliError('WHARF_INVALID', `--since takes a time (2024-05-01T12:00:00Z) or an age (30m, 2h, 1d), not ${JSON.stringify(raw)}`)
  return new Date(t).toISOString()
}

function query(opts: { num?: string; type?: string; since?: string }): string {
  const q = new URLSearchParams()
  if (opts.num) q.set('lines', opts.num)
  if (opts.type) q.set('type', opts.type)
  if (opts.since) q.set('since', sinceTime(opts.since))
  const s = q.toString()
  return s ? `?${s}` : ''
}

/** Follows `GET .../logs/stream` (server-sent events): prints each line as it comes, until interrupted. */
async function follow(client: ApiClient, path: string, json: boolean): Promise<void> {
  for await (const data of sseData(await openEventStream(client, path))) {
    const lines = data.map((d) => JSON.parse(d) as LogLine)
    process.stdout.write(`${lines.map((l) => (json ? JSON.stringify(l) : formatLine(l))).join('\n')}\n`)
  }
  throw new CliError('WHARF_UNAVAILABLE', 'the controller ended the log stream')
}

/** `wharf logs`: what an app printed (and what the platform said about it); -f follows. */
export function logsTopic(program: Command): void {
  withApp(program.command('logs').description("an app's log: its processes' output and the platform's [wharf] lines; -f follows live"))
    .option('-n, --num <n>', 'how many lines (1-10000; default 100)')
    .option('-f, --follow', 'keep printing new lines as they are written')
    .option('-t, --type <type>', 'only this process type, e.g. web')
    .option('--since <time>', 'lines since a time or an age (30m, 2h, 1d), from the archives too')
    .option('--json', 'the API JSON (with -f: one line object per line)')
    .action(async (opts: { app?: string; num?: string; follow?: boolean; type?: string; since?: string; json?: boolean }) => {
      if (opts.num !== undefined && !/^[1-9]\d{0,4}$/.test(opts.num))
        throw new CliError('WHARF_INVALID', `-n takes a number of lines (1-10000), not ${JSON.stringify(opts.num)}`)
      if (opts.follow && opts.since) throw new CliError('WHARF_INVALID', '-f and --since do not go together: -f starts from the newest lines')
      const client = api()
      if (opts.follow) return follow(client, appPath(opts, `/logs/stream${query(opts)}`), Boolean(opts.json))
      const res = await client.call<{ lines: LogLine[] }>('GET', appPath(opts, `/logs${query(opts)}`))
      if (opts.json) return printJson(res)
      if (res.lines.length) process.stdout.write(`${res.lines.map(formatLine).join('\n')}\n`)
      else console.log('No log lines yet.')
    })
  withApp(program.command('logs:token').description("the app's log-input token: lines sent to the syslog receiver must begin with it"))
    .option('--json', 'the API JSON')
    .action(async (opts: { app?: string; json?: boolean }) => {
      const res = await api().call<{ app: string; token: string }>('GET', appPath(opts, '/logs/token'))
      if (opts.json) return printJson(res)
      console.log(res.token)
    })
}
