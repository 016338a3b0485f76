import type { Command } from 'commander'
import { formatTrace, type Trace } from '../domain/runtime/trace.js'
import { appFromGitRemote, resolveApp } from './app.js'
import { ApiClient } from './client.js'
import { printJson, table } from './output.js'
import { openEventStream, sseData } from './sse.js'

interface EventRow {
  seq: number
  type: string
  stream: string
  app: string | null
  actor: string
  occurredAt: string
  data: unknown
}

function row(e: EventRow): Record<string, unknown> {
  return {
    seq: e.seq,
    time: e.occurredAt.replace('T', ' ').slice(0, 19),
    type: e.type,
    app: e.app ?? '',
    actor: e.actor,
    data: JSON.stringify(e.data).slice(0, 80),
  }
}
const COLUMNS = [{ key: 'seq' }, { key: 'time' }, { key: 'type' }, { key: 'app' }, { key: 'actor' }, { key: 'data' }]

function queryOf(opts: { app?: string; type?: string; after?: string; limit?: string }): string {
  const q = new URLSearchParams()
  if (opts.app) q.set('app', opts.app)
  if (opts.type) q.set('type', opts.type)
  if (opts.after) q.set('after', opts.after)
  if (opts.limit) q.set('limit', opts.limit)
  const s = q.toString()
  return s ? `?${s}` : ''
}

/** Follows `GET /v1/events/stream` (server-sent events) and prints each event as it comes. */
async function follow(client: ApiClient, query: string, json: boolean): Promise<void> {
  const body = await openEventStream(client, `/v1/events/stream${query}`)
  if (!json) console.log(table([], COLUMNS))
  for await (const data of sseData(body)) {
    for (const d of data) {
      const e = JSON.parse(d) as EventRow
      console.log(json ? JSON.stringify(e) : table([row(e)], COLUMNS).split('\n')[1])
    }
  }
}

/** `wharf events`: the platform's events the user may see, or a live tail with -f. */
export function eventsTopic(program: Command): void {
  program
    .command('events')
    .description("events you may see (an app's, with -a; else all), oldest first; -f follows live")
    .option('-a, --app <app>', 'only this app (default: the app of the `wharf` git remote, if any)')
    .option('-t, --type <type>', 'only this event type, e.g. ConfigSet')
    .option('--after <seq>', 'only events after this sequence number')
    .option('-n, --limit <n>', 'at most this many (1-1000)', '100')
    .option('-f, --follow', 'keep printing new events as they happen')
    .option('--json', 'the API JSON (with -f: one event per line)')
    .action(async (opts: { app?: string; type?: string; after?: string; limit?: string; follow?: boolean; json?: boolean }) => {
      const client = ApiClient.fromEnv()
      const app = opts.app ?? appFromGitRemote()
      if (opts.follow) return follow(client, queryOf({ ...opts, app, limit: undefined }), Boolean(opts.json))
      const page = await client.call<{ events: EventRow[]; last: number }>('GET', `/v1/events${queryOf({ ...opts, app })}`)
      if (opts.json) return printJson(page)
      console.log(page.events.length ? table(page.events.map(row), COLUMNS) : 'No events.')
    })
  traceTopic(program)
}

/** `wharf events:trace <vN | build id | correlation id>`: from the push (or the command) to the moment the router served the new containers. */
function traceTopic(program: Command): void {
  program
    .command('events:trace <ref>')
    .description('the chain of events from a push or a command to the live route (ref: vN, a build id or a correlation id), with the time of each step')
    .option('-a, --app <app>', 'the app (default: the app of the git remote `wharf`)')
    .option('--json', 'print the API JSON')
    .action(async (ref: string, opts: { app?: string; json?: boolean }) => {
      const app = resolveApp(opts.app)
      const trace = await ApiClient.fromEnv().call<Trace>('GET', `/v1/apps/${encodeURIComponent(app)}/trace?ref=${encodeURIComponent(ref)}`)
      if (opts.json) return printJson(trace)
      console.log(formatTrace(trace))
    })
}
