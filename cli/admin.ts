import type { Command } from 'commander'
import { createInterface } from 'node:readline/promises'
import { ApiClient, CliError } from './client.js'
import { bytes, printJson, printList, table, withProgress } from './output.js'

interface Part {
  part: string
  up: boolean
  address: string
  version?: string
  detail?: string
}
interface Host {
  id: string
  hostname: string
  role: string
  state: string
  availability: string
  address: string
  labels: Record<string, string>
  leader: boolean
  engineVersion?: string
}
interface ConsumerRow {
  name: string
  state: 'running' | 'reconnecting' | 'stopped'
  error?: string
  lag?: number
  sinceProgressS: number
  reconnects: number
}
interface Consumers {
  ok: boolean
  reason?: string
  head?: number
  consumers: ConsumerRow[]
}
interface Backup {
  id: string
  createdAt: string
  trigger: string
  actor: string
  bytes: number
  seq: number
  tookMs: number
}
interface Export {
  id: string
  createdAt: string
  actor: string
  namespace: string
  events: number
  bytes: number
  tookMs: number
}

interface RowDiff {
  table: string
  kind: 'only-live' | 'only-rebuilt' | 'differs'
  key: Record<string, unknown>
  live?: Record<string, unknown>
  rebuilt?: Record<string, unknown>
}
interface ModelDiff {
  projection: string
  seq: number
  identical: boolean
  differing: number
  rows: RowDiff[]
  problem?: string
}
interface Replay {
  id: string
  projection: string | null
  verify: boolean
  status: 'running' | 'done' | 'failed'
  phase: string
  progress: { seq: number; total: number; events: number; eventsPerSec: number; etaSeconds: number | null } | null
  result: { seq: number; events: number; tookMs: number; eventsPerSec: number; models?: ModelDiff[]; swapped?: string[] } | null
  error: string | null
}

/** How often admin:replay asks how far the replay is, ms. */
const REPLAY_POLL_MS = 500

/** How long backup, restore, export and import may take before the CLI gives up waiting, ms. */
const LONG_MS = 60 * 60_000

const rate = (n: number) => `${Math.round(n).toLocaleString('en-US')} events/s`
const shortJson = (o: unknown) => {
  const s = JSON.stringify(o)
  return s.length > 160 ? `${s.slice(0, 157)}...` : s
}

/** Polls a replay until it ends, showing its progress on stderr (a line rewritten on a terminal, a line per 5 s otherwise). */
async function followReplay(client: ApiClient, first: Replay): Promise<Replay> {
  const tty = process.stderr.isTTY === true
  let job = first
  // Off a terminal: a line every 5 s, none for a short replay.
  let lastLine = Date.now()
  let shown = ''
  while (job.status === 'running') {
    await new Promise((r) => setTimeout(r, REPLAY_POLL_MS))
    job = await client.call<Replay>('GET', `/v1/admin/replays/${encodeURIComponent(job.id)}`)
    const p = job.progress
    let line = `${job.phase}`
    if (p)
      line += `: event ${p.seq.toLocaleString('en-US')} of ${p.total.toLocaleString('en-US')}, ${rate(p.eventsPerSec)}${p.etaSeconds === null ? '' : `, ETA ${p.etaSeconds} s`}`
    if (tty) process.stderr.write(`\r\x1b[K${line}`)
    else if (line !== shown && Date.now() - lastLine >= 5_000) {
      process.stderr.write(`${line}\n`)
      lastLine = Date.now()
    }
    shown = line
  }
  if (tty && shown) process.stderr.write('\r\x1b[K')
  return job
}

const when = (iso: string) => iso.replace('T', ' ').slice(0, 19)
const api = () => ApiClient.fromEnv()

/** admin:status, admin:hosts, admin:replay, admin:backup(s), admin:restore, admin:export-events, admin:exports, admin:import-events (admins). */
export function adminTopic(program: Command): void {
  program
    .command('admin:status')
    .description(
      'each part of the platform as up or down, with its address and version, and each consumer of the log with its state and lag (admins only); exit 3 when a part is down or a consumer stopped or behind',
    )
    .option('--json', 'print the API JSON')
    .action(async (opts: { json?: boolean }) => {
      const { parts, consumers } = await api().call<{ parts: Part[]; consumers?: Consumers }>('GET', '/v1/admin/status')
      if (opts.json) printJson(consumers ? { parts, consumers } : { parts })
      else {
        const rows = parts.map((p) => ({ ...p, state: p.up ? 'up' : 'DOWN', version: p.version ?? '' }))
        console.log(table(rows, [{ key: 'part' }, { key: 'state' }, { key: 'address' }, { key: 'version' }, { key: 'detail' }]))
        if (consumers) {
          const crows = consumers.consumers.map((c) => ({
            ...c,
            state: c.state === 'running' ? 'running' : c.state.toUpperCase(),
            lag: c.lag === undefined ? '?' : String(c.lag),
            since: `${c.sinceProgressS} s`,
            reconnects: String(c.reconnects),
            error: c.error ?? '',
          }))
          console.log('')
          console.log(
            table(crows, [
              { key: 'name', title: 'consumer' },
              { key: 'state' },
              { key: 'lag' },
              { key: 'since', title: 'last progress' },
              { key: 'reconnects' },
              { key: 'error' },
            ]),
          )
          console.log(consumers.ok ? `\nhealthy (log head ${consumers.head ?? '?'})` : `\nUNHEALTHY: ${consumers.reason}`)
        }
      }
      if (parts.some((p) => !p.up) || consumers?.ok === false) process.exitCode = 3
    })

  program
    .command('admin:hosts')
    .description("the swarm's nodes (Docker hosts): role, state, availability, address, labels (admins only); exit 3 when one is not ready")
    .option('--json', 'print the API JSON')
    .action(async (opts: { json?: boolean }) => {
      const { hosts } = await api().call<{ hosts: Host[] }>('GET', '/v1/admin/hosts')
      if (opts.json) printJson({ hosts })
      else {
        const rows = hosts.map((h) => ({
          ...h,
          role: h.leader ? 'manager (leader)' : h.role,
          labels: Object.entries(h.labels)
            .map(([k, v]) => `${k}=${v}`)
            .join(','),
          engine: h.engineVersion ?? '',
        }))
        console.log(
          table(rows, [
            { key: 'hostname' },
            { key: 'role' },
            { key: 'state' },
            { key: 'availability' },
            { key: 'address' },
            { key: 'labels' },
            { key: 'engine' },
          ]),
        )
      }
      if (hosts.some((h) => h.state !== 'ready')) process.exitCode = 3
    })

  program
    .command('admin:replay')
    .description(
      'rebuild every read model (or one) from the first event and swap the rebuilt tables in; with --verify, compare them with the live ones instead and exit 1 on any difference (admins only)',
    )
    .option('--projection <name>', 'only this read model (apps, config, eventlog, ...)')
    .option('--verify', 'rebuild into shadow tables and compare them row by row with the live ones; change nothing')
    .option('--json', 'print the API JSON of the finished replay')
    .action(async (opts: { projection?: string; verify?: boolean; json?: boolean }) => {
      const client = api()
      const body = { ...(opts.projection ? { projection: opts.projection } : {}), ...(opts.verify ? { verify: true } : {}) }
      const job = await followReplay(client, await client.call<Replay>('POST', '/v1/admin/replays', body))
      if (job.status === 'failed' || !job.result) throw new CliError('WHARF_INTERNAL', `replay ${job.id} failed: ${job.error ?? 'no result'}`)
      const r = job.result
      const models = r.models ?? []
      if (opts.verify && models.some((m) => !m.identical)) process.exitCode = 1
      if (opts.json) return printJson(job)
      if (opts.verify) {
        for (const m of models) {
          if (m.identical) {
            console.log(`${m.projection}: identical (at event ${m.seq})`)
            continue
          }
          if (m.problem) {
            console.log(`${m.projection}: NOT COMPARED: ${m.problem}`)
            continue
          }
          console.log(
            `${m.projection}: ${m.differing} ${m.differing === 1 ? 'row differs' : 'rows differ'} (at event ${m.seq})${m.differing > m.rows.length ? `, the first ${m.rows.length}:` : ':'}`,
          )
          console.log(
            table(
              m.rows.map((d) => ({
                table: d.table,
                kind: d.kind,
                key: shortJson(d.key),
                live: d.live ? shortJson(d.live) : '-',
                rebuilt: d.rebuilt ? shortJson(d.rebuilt) : '-',
              })),
              [{ key: 'table' }, { key: 'kind' }, { key: 'key' }, { key: 'live' }, { key: 'rebuilt' }],
            ),
          )
        }
      } else {
        console.log(`Rebuilt and swapped in: ${(r.swapped ?? []).join(', ')} (up to event ${r.seq}).`)
      }
      console.log(`Replayed ${r.events.toLocaleString('en-US')} events in ${(r.tookMs / 1000).toFixed(1)} s (${rate(r.eventsPerSec)}).`)
    })

  program
    .command('admin:backup')
    .description('back the read-model database up to the store now (admins only)')
    .option('--json', 'print the API JSON')
    .action(async (opts: { json?: boolean }) => {
      const b = await withProgress('Backing up the read models to the store', () =>
        api().call<Backup>('POST', '/v1/admin/backups', undefined, { timeoutMs: LONG_MS }),
      )
      if (opts.json) return printJson(b)
      console.log(`Backup ${b.id}: ${bytes(b.bytes)}, the read models up to event ${b.seq}. Restore it with: wharf admin:restore ${b.id}`)
    })

  program
    .command('admin:backups')
    .description("this platform's backups in the store, newest first (admins only)")
    .option('--json', 'print the API JSON')
    .action(async (opts: { json?: boolean }) => {
      const list = await api().call<Backup[]>('GET', '/v1/admin/backups')
      printList(
        list.map((b) => ({ ...b, created: when(b.createdAt), size: bytes(b.bytes), took: `${(b.tookMs / 1000).toFixed(1)} s` })),
        [{ key: 'id' }, { key: 'created' }, { key: 'trigger' }, { key: 'actor' }, { key: 'size' }, { key: 'seq', title: 'up to event' }, { key: 'took' }],
        { json: opts.json, empty: 'No backups.' },
        list,
      )
    })

  program
    .command('admin:restore <id>')
    .description('replace the read models with a backup; they catch up from the event log (admins only)')
    .option('--confirm <id>', 'the backup id again, to confirm (asked for on a terminal)')
    .option('--json', 'print the API JSON')
    .action(async (id: string, opts: { confirm?: string; json?: boolean }) => {
      let confirm = opts.confirm
      if (confirm === undefined && process.stdin.isTTY && process.stderr.isTTY) {
        const rl = createInterface({ input: process.stdin, output: process.stderr })
        confirm = (await rl.question(`This replaces every read model with backup ${id}. Type the id to go on: `)).trim()
        rl.close()
      }
      if (confirm === undefined) throw new CliError('WHARF_INVALID', `a restore replaces every read model: confirm with --confirm ${id}`)
      if (confirm !== id) throw new CliError('WHARF_INVALID', `--confirm ${confirm} does not match backup ${id}; nothing was restored`)
      const r = await withProgress(`Restoring backup ${id}`, () =>
        api().call<{ backup: Backup; seq: number; tookMs: number }>('POST', `/v1/admin/backups/${encodeURIComponent(id)}/restore`, undefined, {
          timeoutMs: LONG_MS,
        }),
      )
      if (opts.json) return printJson(r)
      console.log(`Restored backup ${id} (the read models as of event ${r.backup.seq}); they have caught up to event ${r.seq}.`)
    })

  program
    .command('admin:export-events')
    .description('write the whole event log to the store as newline-delimited JSON (admins only)')
    .option('--json', 'print the API JSON')
    .action(async (opts: { json?: boolean }) => {
      const e = await withProgress('Exporting the event log to the store', () =>
        api().call<Export>('POST', '/v1/admin/exports', undefined, { timeoutMs: LONG_MS }),
      )
      if (opts.json) return printJson(e)
      console.log(`Export ${e.id}: ${e.events} events, ${bytes(e.bytes)}. On a new platform: wharf admin:import-events ${e.id} --namespace ${e.namespace}`)
    })

  program
    .command('admin:exports')
    .description('exports of the event log in the store, newest first (admins only)')
    .option('--namespace <namespace>', "another platform's exports (its WHARF_NAMESPACE)")
    .option('--json', 'print the API JSON')
    .action(async (opts: { namespace?: string; json?: boolean }) => {
      const list = await api().call<Export[]>('GET', `/v1/admin/exports${opts.namespace ? `?namespace=${encodeURIComponent(opts.namespace)}` : ''}`)
      printList(
        list.map((e) => ({ ...e, created: when(e.createdAt), size: bytes(e.bytes) })),
        [{ key: 'id' }, { key: 'created' }, { key: 'actor' }, { key: 'events' }, { key: 'size' }],
        { json: opts.json, empty: 'No exports.' },
        list,
      )
    })

  program
    .command('admin:import-events <id>')
    .description('append an export of the event log to this platform, which must be new (as an admin, or with the one-time --import-token of `make up`)')
    .option(
      '--namespace <namespace>',
      "the namespace the export was written under (default: this platform's; another one only if its WHARF_IMPORT_FROM names it)",
    )
    .option('--import-token <token>', 'the one-time import token `make up` printed for the new platform (no sign-in then)')
    .option('--url <url>', 'the controller of the new platform (default: WHARF_URL or the saved one)')
    .option('--json', 'print the API JSON')
    .action(async (id: string, opts: { namespace?: string; importToken?: string; url?: string; json?: boolean }) => {
      const base = api()
      const client = opts.url ? base.withUrl(opts.url, base.token) : base
      const r = await withProgress(`Importing export ${id}`, () =>
        client.call<{ imported: number; seq: number }>(
          'POST',
          `/v1/admin/exports/${encodeURIComponent(id)}/import`,
          { ...(opts.namespace ? { namespace: opts.namespace } : {}), ...(opts.importToken ? { importToken: opts.importToken } : {}) },
          { timeoutMs: LONG_MS },
        ),
      )
      if (opts.json) return printJson(r)
      console.log(`Imported ${r.imported} events; the event log now ends at event ${r.seq}. The read models are built from it as usual.`)
    })
}
