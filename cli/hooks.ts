import type { Command } from 'commander'
import { ApiClient } from './client.js'
import { printJson, printList, withProgress } from './output.js'

interface HookOut {
  id: string
  url: string
  app: string | null
  events: string[]
  owner: string
  status: string
  created: string
  failingSince: string | null
  lastError: string | null
}

interface AttemptOut {
  delivery: string
  seq: number
  type: string
  at: string
  status: number
  durationMs: number
  error?: string
  request?: string
}

const api = () => ApiClient.fromEnv()
const enc = encodeURIComponent

/** One attempt as a table row. */
function attemptRow(a: AttemptOut): Record<string, unknown> {
  return {
    at: a.at,
    delivery: a.delivery,
    event: `${a.seq} ${a.type}`,
    status: a.status === 0 ? '-' : a.status,
    duration: `${a.durationMs} ms`,
    result: a.error ? a.error : 'ok',
    redelivery: a.request ? 'yes' : '',
  }
}

const ATTEMPT_COLUMNS = [{ key: 'at' }, { key: 'delivery' }, { key: 'event' }, { key: 'status' }, { key: 'duration' }, { key: 'result' }, { key: 'redelivery' }]

/** hooks:add|list|remove|deliveries|redeliver: webhook subscriptions to the event log (Standard Webhooks). */
export function hooksTopic(program: Command): void {
  program
    .command('hooks:add <url>')
    .description('send events to a URL, signed (Standard Webhooks); without -a: every event of the platform (admins)')
    .option('-a, --app <app>', "the app whose events it gets (no default: without it the hook is the platform's)")
    .option('--events <patterns>', "event types, comma separated, a trailing * for a prefix: 'Release*,Deploy*,ConfigSet' (default: all)")
    .option('--json', 'print { id, url, secret, events } as JSON')
    .action(async (url: string, opts: { app?: string; events?: string; json?: boolean }) => {
      const events = opts.events === undefined ? undefined : opts.events.split(',').map((e) => e.trim())
      const res = await api().call<{ id: string; url: string; app: string | null; events: string[]; secret: string }>('POST', '/v1/hooks', {
        url,
        ...(opts.app ? { app: opts.app } : {}),
        ...(events ? { events } : {}),
      })
      if (opts.json) return printJson(res)
      console.log(`Added hook ${res.id} -> ${res.url} (${res.app ? `app ${res.app}` : 'the whole platform'}; events: ${res.events.join(',') || 'all'}).`)
      console.log(`Signing secret (shown once, keep it): ${res.secret}`)
    })

  program
    .command('hooks:list')
    .description('your webhooks (an admin: every one)')
    .option('-a, --app <app>', "only this app's hooks")
    .option('--json', 'print the API JSON')
    .action(async (opts: { app?: string; json?: boolean }) => {
      const res = await api().call<{ hooks: HookOut[] }>('GET', `/v1/hooks${opts.app ? `?app=${enc(opts.app)}` : ''}`)
      const rows = res.hooks.map((h) => ({
        ...h,
        scope: h.app ?? '(platform)',
        events: h.events.join(',') || '*',
        status: h.lastError && h.status !== 'active' ? `${h.status}: ${h.lastError}` : h.status,
      }))
      printList(
        rows,
        [{ key: 'id' }, { key: 'scope', title: 'app' }, { key: 'url' }, { key: 'events' }, { key: 'owner' }, { key: 'status' }],
        { json: opts.json, empty: 'No hooks.' },
        res,
      )
    })

  program
    .command('hooks:remove <id>')
    .description('remove a webhook: nothing more is sent to it')
    .option('--json', 'print the API JSON')
    .action(async (id: string, opts: { json?: boolean }) => {
      const res = await api().call<{ id: string }>('DELETE', `/v1/hooks/${enc(id)}`)
      if (opts.json) return printJson(res)
      console.log(`Removed hook ${id}.`)
    })

  program
    .command('hooks:deliveries <id>')
    .description("a webhook's newest delivery attempts: time, delivery (event id), HTTP status, duration, error")
    .option('-n, --num <n>', 'how many attempts (1-1000)', '50')
    .option('--json', 'print the API JSON')
    .action(async (id: string, opts: { num: string; json?: boolean }) => {
      const res = await api().call<{ hook: HookOut; attempts: AttemptOut[] }>('GET', `/v1/hooks/${enc(id)}/deliveries?limit=${enc(opts.num)}`)
      if (!opts.json)
        console.log(`Hook ${res.hook.id} -> ${res.hook.url}: ${res.hook.status}${res.hook.lastError ? ` (last error: ${res.hook.lastError})` : ''}`)
      printList(res.attempts.map(attemptRow), ATTEMPT_COLUMNS, { json: opts.json, empty: 'No deliveries yet.' }, res)
    })

  program
    .command('hooks:redeliver <id> <delivery>')
    .description('send one past delivery (its id from hooks:deliveries) again, now')
    .option('--json', 'print the API JSON')
    .action(async (id: string, delivery: string, opts: { json?: boolean }) => {
      const res = await withProgress(`Redelivering ${delivery}`, () =>
        api().call<{ request: string; attempt?: AttemptOut }>('POST', `/v1/hooks/${enc(id)}/redeliver`, { delivery }, { timeoutMs: 60_000 }),
      )
      if (opts.json) return printJson(res)
      if (!res.attempt) return console.log(`Redelivery ${res.request} is under way; see wharf hooks:deliveries ${id}.`)
      const a = res.attempt
      console.log(a.error ? `Redelivery failed after ${a.durationMs} ms: ${a.error}` : `Redelivered: HTTP ${a.status} in ${a.durationMs} ms.`)
    })
}
