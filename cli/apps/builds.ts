import type { Command } from 'commander'
import { PROCESS_TYPE } from '../../domain/app/names.js'
import { resolveApp } from '../app.js'
import { CliError } from '../client.js'
import { sendAndWait, withWait, type WaitOptions } from '../follow.js'
import { printJson, printList } from '../output.js'
import type { BuildView } from '../../services/controller/routes/builds.js'
import { api, appPath, withApp } from './common.js'

/** A build as the API answers it; `builds:info` adds the log. */
type BuildBody = BuildView & { log?: string }

interface CreatedBody {
  build: string
  release: number
  image: string
  digest: string
  port: number
  url: string
}

/** A build id as the table shows it: its first 13 characters (the millisecond it started). */
function shortId(id: string): string {
  return id.slice(0, 13)
}

/** `5s ago`, `3m ago`, `2h ago`, `4d ago`. */
export function age(iso: string, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000))
  if (s < 60) return `${s}s ago`
  if (s < 3600) return `${Math.floor(s / 60)}m ago`
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`
  return `${Math.floor(s / 86400)}d ago`
}

/** What was built: the commit (7 hex digits) of a push, the image of `builds:create`. */
function what(b: BuildBody): string {
  return b.sha ? b.sha.slice(0, 7) : (b.source ?? '-')
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value]
}

/** `type: command`: a process type (the one pattern of domain/app/names.ts), a colon, a command. */
const PROCFILE_LINE = new RegExp(`^(${PROCESS_TYPE}):\\s*(\\S.*)$`)

/** `--procfile 'web: cmd'` lines to a Procfile object; throws on a bad or repeated type. */
export function procfileOf(lines: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of lines) {
    const m = PROCFILE_LINE.exec(line.trim())
    if (!m) throw new CliError('WHARF_INVALID', `not a Procfile line: ${JSON.stringify(line)} (give 'type: command', type in lower case)`)
    if (m[1]! in out) throw new CliError('WHARF_INVALID', `process type ${m[1]} is given twice`)
    out[m[1]!] = m[2]!
  }
  return out
}

/** builds:list|info|create. */
export function buildsTopic(program: Command): void {
  withApp(program.command('builds:list').alias('builds').description("an app's builds (pushes and builds:create), newest first"))
    .option('--json', 'print the API JSON')
    .action(async (opts: { app?: string; json?: boolean }) => {
      const res = await api().call<{ builds: BuildBody[] }>('GET', appPath(opts, '/builds'))
      const rows = res.builds.map((b) => ({
        id: shortId(b.id),
        status: b.status,
        stack: b.stack ?? '-',
        source: what(b),
        by: b.by,
        release: b.release === null ? '-' : `v${b.release}`,
        age: age(b.created),
      }))
      printList(
        rows,
        [{ key: 'id' }, { key: 'status' }, { key: 'stack' }, { key: 'source' }, { key: 'by' }, { key: 'release' }, { key: 'age' }],
        { json: opts.json, empty: 'No builds.' },
        res,
      )
    })

  withApp(program.command('builds:info [build]').description('one build (an id, a unique prefix of one, or latest: the default), then its output'))
    .option('--json', 'print the API JSON')
    .action(async (build: string | undefined, opts: { app?: string; json?: boolean }) => {
      const b = await api().call<BuildBody>('GET', appPath(opts, `/builds/${encodeURIComponent(build ?? 'latest')}`))
      if (opts.json) return printJson(b)
      const procfile = Object.entries(b.procfile ?? {}).map(([t, cmd]) => `  ${t}: ${cmd}`)
      const lines = [
        `=== build ${b.id}`,
        `status:   ${b.status}${b.reason ? `: ${b.reason}` : ''}`,
        `from:     ${b.kind === 'git' ? `git push of ${b.sha ?? '?'}` : `image ${b.source ?? '?'}`}`,
        `stack:    ${b.stack ?? '-'}`,
        `by:       ${b.by}`,
        `image:    ${b.image ?? '-'}`,
        `digest:   ${b.digest ?? '-'}`,
        `port:     ${b.port ?? '-'}`,
        `release:  ${b.release === null ? '-' : `v${b.release}`}`,
        `created:  ${b.created}`,
        `finished: ${b.finished ?? '-'}`,
        ...(procfile.length ? ['procfile:', ...procfile] : []),
        '',
        '=== output',
      ]
      console.log(lines.join('\n'))
      process.stdout.write(b.log && !b.log.endsWith('\n') ? `${b.log}\n` : (b.log ?? ''))
    })

  withWait(
    withApp(
      program
        .command('builds:create <image>')
        .description('release an image from the Docker engine or the platform registry as a build (Deis pull); waits until the router serves it'),
    ),
  )
    .option('--procfile <line>', "a process type and its command, 'type: command' (repeat for more)", collect, [] as string[])
    .option('--port <port>', 'the port a web process listens on (default: the one port the image EXPOSEs, else 5000)')
    .option('--json', 'print the API JSON')
    .action(async (image: string, opts: WaitOptions & { procfile: string[]; port?: string }) => {
      const body: { image: string; procfile?: Record<string, string>; port?: number } = { image }
      if (opts.procfile.length) body.procfile = procfileOf(opts.procfile)
      if (opts.port !== undefined) {
        const port = Number(opts.port)
        if (!/^[0-9]{1,5}$/.test(opts.port) || port < 1 || port > 65535) throw new CliError('WHARF_INVALID', `not a port: ${opts.port}`)
        body.port = port
      }
      const app = resolveApp(opts.app)
      if (!opts.json) console.log(`importing ${image}...`)
      const res = await sendAndWait(api(), { ...opts, app }, (requestId) => api().call<CreatedBody>('POST', appPath({ app }, '/builds'), body, { requestId }))
      if (opts.json) return printJson(res)
      console.log(`pushed ${res.image} (${res.digest})`)
      console.log(`Released v${res.release} of ${app}: ${res.url}`)
    })
}
