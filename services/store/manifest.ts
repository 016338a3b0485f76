/**
 * What Wharf writes next to each backup and event-log export in the store, and the checks an object
 * must pass before a restore or an import touches anything. Pure: no I/O.
 *
 * A manifest is written last, after its data object is complete, so "has a manifest" is "complete":
 * a backup cut off by a failure leaves no manifest and is never listed or restored.
 */
import { randomBytes } from 'node:crypto'
import { Compile } from 'typebox/compile'
import {
  BACKUP_FORMAT,
  BACKUP_SCHEMA,
  BackupManifestSchema,
  EXPORT_FORMAT,
  ExportManifestSchema,
  type BackupManifest,
  type ExportManifest,
} from '../../core/backups.js'
import { WharfError } from '../../core/errors.js'

export function newObjectId(now = new Date()): string {
  const iso = now.toISOString()
  return `${iso.slice(0, 10).replaceAll('-', '')}-${iso.slice(11, 19).replaceAll(':', '')}-${randomBytes(2).toString('hex')}`
}

/** The store keys of backup or export `id` of `namespace`: its data object and its manifest. */
export function keysOf(namespace: string, id: string, ext: 'dump' | 'ndjson'): { data: string; manifest: string } {
  return { data: `${namespace}/${id}.${ext}`, manifest: `${namespace}/${id}.json` }
}

const checkBackup = Compile(BackupManifestSchema)
const checkExport = Compile(ExportManifestSchema)

function corrupt(what: string, id: string, why: string): WharfError {
  return new WharfError('WHARF_BACKUP_CORRUPT', `${what} ${id} is not usable: ${why}; nothing was changed`, { details: { id } })
}

function parse<T>(what: string, id: string, text: string, format: string, check: ReturnType<typeof Compile>): T {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    throw corrupt(what, id, 'its manifest is not JSON')
  }
  const found = (json as { format?: unknown } | null)?.format
  if (found !== format) throw corrupt(what, id, `its manifest is not a ${format} manifest (format ${JSON.stringify(found ?? null)})`)
  if (!check.Check(json)) {
    const e = [...check.Errors(json)][0]
    throw corrupt(what, id, `its manifest is malformed (${e ? `${e.instancePath || '/'} ${e.message}` : 'schema'})`)
  }
  if ((json as { id: string }).id !== id) throw corrupt(what, id, `its manifest names another id (${(json as { id: string }).id})`)
  return json as T
}

/** The manifest of backup `id`, checked; `WHARF_BACKUP_CORRUPT` when it is not one. */
export function parseBackupManifest(id: string, text: string): BackupManifest {
  const m = parse<BackupManifest>('backup', id, text, BACKUP_FORMAT, checkBackup)
  if (!m.schemas.includes('wharf')) throw corrupt('backup', id, 'it holds no projection checkpoints (schema wharf)')
  return m
}

/** The manifest of export `id`, checked; `WHARF_BACKUP_CORRUPT` when it is not one. */
export function parseExportManifest(id: string, text: string): ExportManifest {
  const m = parse<ExportManifest>('export', id, text, EXPORT_FORMAT, checkExport)
  // Every seq holds one commit of one event or more.
  if (m.events < m.lastSeq) throw corrupt('export', id, `it claims ${m.events} events up to seq ${m.lastSeq}`)
  return m
}

/** What a restore compares a backup with: the platform as it is now. */
export interface PlatformIdentity {
  /** The id of the log's first event (undefined: the log is empty). */
  platform: string | undefined
  lastSeq: number
}

/**
 * Refuses (`WHARF_BACKUP_FOREIGN`) a backup of another event log: its first event is another one, or
 * its read models are ahead of this log's end.
 */
export function checkSamePlatform(m: BackupManifest, here: PlatformIdentity): void {
  const foreign = (why: string) =>
    new WharfError('WHARF_BACKUP_FOREIGN', `backup ${m.id} is of another platform: ${why}; nothing was changed`, {
      details: { id: m.id, platform: m.platform, here: here.platform ?? null },
    })
  if (here.platform !== m.platform)
    throw foreign(here.platform ? `its event log starts with event ${m.platform}, this one with ${here.platform}` : 'this event log is empty')
  const ahead = Math.max(m.lastSeq, ...m.checkpoints.map((c) => c.seq))
  if (ahead > here.lastSeq) throw foreign(`it was taken at seq ${ahead}, and this event log ends at ${here.lastSeq}`)
}

/**
 * The schemas of a `pg_restore --list` table of contents, refused (`WHARF_BACKUP_CORRUPT`) unless they
 * are exactly Wharf's (`wharf` and `rm_*`), as the manifest says.
 */
export function checkDumpSchemas(m: BackupManifest, toc: string): string[] {
  const schemas = new Set<string>()
  const others = new Set<string>()
  for (const line of toc.split('\n')) {
    // `<id>; <catalog oid> <oid> <TYPE, upper-case words> <schema, or - for none> <name...> <owner>`
    const entry = /^\d+; \d+ \d+ ((?:[A-Z]+ )+)(\S+) (\S+)/.exec(line)
    if (!entry) continue
    if (entry[1] === 'SCHEMA ') schemas.add(entry[3]!)
    else if (entry[2] !== '-') others.add(entry[2]!)
  }
  const found = [...schemas].sort()
  const bad = [...new Set([...found, ...others])].filter((s) => !BACKUP_SCHEMA.test(s))
  if (bad.length) throw corrupt('backup', m.id, `its dump holds schemas Wharf does not own (${bad.join(', ')})`)
  if (found.join(',') !== [...m.schemas].sort().join(','))
    throw corrupt('backup', m.id, `its dump holds schemas ${found.join(', ') || 'none'}, its manifest says ${m.schemas.join(', ')}`)
  return found
}
