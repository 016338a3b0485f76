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

/** How long backup, restore, export and import may take before the CLI gives up waiting, ms. */
const LONG_MS = 60 * 60_000

const when = (iso: string) => iso.replace('T', ' ').slice(0, 19)
const api = () => ApiClient.fromEnv()

/** admin:status, admin:backup(s), admin:restore, admin:export-events, admin:exports, admin:import-events (admins). */
export function adminTopic(program: Command): void {
  program
    .command('admin:status')
    .description('each part of the platform as up or down, with its address and version (admins only); exit 3 when one is down')
    .option('--json', 'print the API JSON')
    .action(async (opts: { json?: boolean }) => {
      const { parts } = await api().call<{ parts: Part[] }>('GET', '/v1/admin/status')
      if (opts.json) printJson({ parts })
      else {
        const rows = parts.map((p) => ({ ...p, state: p.up ? 'up' : 'DOWN', version: p.version ?? '' }))
        console.log(table(rows, [{ key: 'part' }, { key: 'state' }, { key: 'address' }, { key: 'version' }, { key: 'detail' }]))
      }
      if (parts.some((p) => !p.up)) process.exitCode = 3
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
    .description('append an export of the event log to this platform, which must be new (no sign-in needed then)')
    .option('--namespace <namespace>', "the namespace the export was written under (default: this platform's)")
    .option('--url <url>', 'the controller of the new platform (default: WHARF_URL or the saved one)')
    .option('--json', 'print the API JSON')
    .action(async (id: string, opts: { namespace?: string; url?: string; json?: boolean }) => {
      const base = api()
      const client = opts.url ? base.withUrl(opts.url, base.token) : base
      const r = await withProgress(`Importing export ${id}`, () =>
        client.call<{ imported: number; seq: number }>(
          'POST',
          `/v1/admin/exports/${encodeURIComponent(id)}/import`,
          opts.namespace ? { namespace: opts.namespace } : {},
          { timeoutMs: LONG_MS },
        ),
      )
      if (opts.json) return printJson(r)
      console.log(`Imported ${r.imported} events; the event log now ends at event ${r.seq}. The read models are built from it as usual.`)
    })
}
