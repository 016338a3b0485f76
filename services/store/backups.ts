/**
 * Backups of the read-model database to the store, and restores from them.
 *
 * A backup is `pg_dump --format=custom` of Wharf's schemas (`wharf`, with the projection checkpoints,
 * and every `rm_*` read model), taken at one snapshot, streamed to `<namespace>/<id>.dump` in the
 * backups bucket (a multipart upload that is aborted when anything fails), then its manifest
 * `<namespace>/<id>.json` (format, platform, checkpoints, size, SHA-256) written last: only a backup
 * with a manifest exists as far as Wharf is concerned.
 *
 * A restore checks everything before it touches anything (manifest, platform, size and checksum,
 * the archive's contents), then, with every projector held off (holdProjections), replaces Wharf's
 * schemas in one transaction (psql --single-transaction: all or nothing), and lets the projectors go:
 * each resumes from its restored checkpoint and catches up from the event log.
 */
import { createWriteStream } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type pg from 'pg'
import { isWharfError, WharfError } from '../../core/errors.js'
import type { Logger } from '../../core/log.js'
import type { ObjectStore } from '../../core/objectstore/index.js'
import { streamId, type EventContext, type EventStore } from '../../events/index.js'
import { announceCheckpointReset, CORE_SCHEMA, holdProjections, readCheckpoints, waitFor } from '../../projections/index.js'
import { BACKUP_FORMAT, BACKUP_SCHEMA, includedSeq, type BackupManifest, type BackupRequest, type RestoreResult } from '../../core/backups.js'
import { checkDumpSchemas, checkSamePlatform, keysOf, newObjectId, parseBackupManifest, type PlatformIdentity } from './manifest.js'
import { Digest, listManifests, readText, storeError } from './objects.js'
import { pgDump, pgDumpVersion, pgRestoreList, pgRestoreToSql, psqlInOneTransaction } from './pgtools.js'

/** The stream that records backups, restores and exports. */
export const BACKUPS_STREAM = streamId('platform', 'backups')

/** Advisory-lock class of "a backup or a restore is running" ("wbkp"); one at a time per database. */
const BACKUP_LOCK_CLASS = 0x77626b70

/** A data object older than this without a manifest is what a failed backup left: removed by {@link pruneBackups}. */
const ORPHAN_AGE_MS = 60 * 60_000

export interface BackupDeps {
  pool: pg.Pool
  /** The read-model database, for pg_dump and psql. */
  databaseUrl: string
  store: EventStore
  /** The backups bucket. */
  objects: ObjectStore
  /** The store's endpoint, named in errors. */
  endpoint: string
  /** Keys are under `<namespace>/`. */
  namespace: string
  log: Logger
  /** Every projection the platform runs: all are held off during a restore. */
  projections: readonly string[]
  /** Complete backups kept by {@link pruneBackups}. */
  keep: number
  /** How long a restore waits for the projectors to let go, ms, default 30_000. */
  holdTimeoutMs?: number
  /** How long a restore waits for the read models to catch up before answering, ms, default 120_000. */
  catchUpTimeoutMs?: number
}

/** Runs `fn` holding the database's backup lock; `WHARF_CONFLICT` when another backup or restore holds it. */
async function withBackupLock<T>(pool: pg.Pool, fn: () => Promise<T>): Promise<T> {
  const client = await pool.connect()
  let broken: Error | undefined
  try {
    const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, 0) AS ok', [BACKUP_LOCK_CLASS])
    if (!rows[0]?.ok) throw new WharfError('WHARF_CONFLICT', 'a backup or a restore is running already; try again when it is done')
    try {
      return await fn()
    } finally {
      await client.query('SELECT pg_advisory_unlock($1, 0)', [BACKUP_LOCK_CLASS]).catch((err: Error) => (broken = err))
    }
  } finally {
    client.release(broken)
  }
}

/** Which event log this is: the id of its first event, and its end. */
export async function platformIdentity(store: EventStore): Promise<PlatformIdentity> {
  const lastSeq = await store.lastSeq()
  if (lastSeq === 0) return { platform: undefined, lastSeq }
  for await (const e of store.readAll(1, { batch: 1 })) return { platform: e.id, lastSeq }
  return { platform: undefined, lastSeq }
}

/**
 * Backs the read models up to the store; answers the manifest. A failure (the gateway gone, pg_dump
 * failing) leaves no manifest, removes what it can of the dump, records `BackupFailed`, and throws.
 */
export async function createBackup(deps: BackupDeps, req: BackupRequest): Promise<BackupManifest> {
  const id = newObjectId()
  const log = deps.log.child({ backup: id, correlationId: req.correlationId })
  const ctx = { actor: req.actor, ...(req.correlationId ? { correlationId: req.correlationId } : {}) }
  // Checked before anything is recorded: a new platform's log stays empty (an import needs that).
  if ((await deps.store.lastSeq()) === 0) throw new WharfError('WHARF_INVALID', 'nothing to back up: the event log is empty')
  try {
    const manifest = await withBackupLock(deps.pool, () => backUp(deps, id, req, log))
    await deps.store.append(
      BACKUPS_STREAM,
      [{ type: 'BackupCompleted', data: { id, trigger: req.trigger, bytes: manifest.dump.bytes, seq: includedSeq(manifest) } }],
      { ...ctx, expectedVersion: 'any' },
    )
    log.info({ bytes: manifest.dump.bytes, tookMs: manifest.tookMs, trigger: req.trigger }, 'backup completed')
    await pruneBackups(deps, ctx).catch((err) => log.warn({ err }, 'pruning old backups failed'))
    return manifest
  } catch (err) {
    const reason = (err as Error).message
    log.error({ err, trigger: req.trigger }, 'backup failed')
    if (!(isWharfError(err) && err.code === 'WHARF_CONFLICT')) {
      await deps.store
        .append(BACKUPS_STREAM, [{ type: 'BackupFailed', data: { id, trigger: req.trigger, reason: reason.slice(0, 2000) } }], {
          ...ctx,
          expectedVersion: 'any',
        })
        .catch((e) => log.warn({ err: e }, 'could not record the failed backup'))
    }
    throw isWharfError(err) ? err : new WharfError('WHARF_UNAVAILABLE', `backup failed: ${reason}`, { cause: err })
  }
}

async function backUp(deps: BackupDeps, id: string, req: BackupRequest, log: Logger): Promise<BackupManifest> {
  const started = Date.now()
  const keys = keysOf(deps.namespace, id, 'dump')
  const { platform } = await platformIdentity(deps.store)
  if (!platform) throw new WharfError('WHARF_INVALID', 'nothing to back up: the event log is empty')
  // Parts of an earlier backup whose upload could not even be aborted (the store was gone); none of
  // this platform's backups is uploading now, as this holds the backup lock.
  await deps.objects.abortUploads(`${deps.namespace}/`).catch((err) => Promise.reject(storeError(deps.endpoint, 'cleaning up unfinished uploads', err)))
  // One snapshot for everything: the checkpoints read here are those inside the dump.
  const snap = await deps.pool.connect()
  try {
    await snap.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
    const { rows } = await snap.query<{ s: string }>('SELECT pg_export_snapshot() AS s')
    const checkpoints = (await readCheckpoints(snap)).map((c) => ({ name: c.name, version: c.version, seq: c.seq, status: c.status }))
    const { rows: ns } = await snap.query<{ n: string }>(`SELECT nspname AS n FROM pg_namespace WHERE nspname = $1 OR nspname LIKE 'rm\\_%' ORDER BY 1`, [
      CORE_SCHEMA,
    ])
    const schemas = ns.map((r) => r.n).filter((n) => BACKUP_SCHEMA.test(n) && !n.endsWith('__next'))
    // Read after the snapshot: no checkpoint in it can be past this.
    const { lastSeq } = await platformIdentity(deps.store)
    const tool = await pgDumpVersion()
    const dump = pgDump(deps.databaseUrl, { snapshot: rows[0]!.s, schemas })
    const digest = new Digest()
    let dumpFailure: Error | undefined
    // The upload ends only once pg_dump has exited 0: a dump cut short never completes an object.
    dump.child.stdout!.pipe(digest, { end: false })
    dump.done.then(
      () => digest.end(),
      (err: Error) => {
        dumpFailure ??= err
        digest.destroy(err)
      },
    )
    try {
      await deps.objects.put(keys.data, digest, { contentType: 'application/vnd.postgresql.custom-archive' })
    } catch (err) {
      if (dumpFailure) throw new WharfError('WHARF_UNAVAILABLE', `pg_dump failed: ${dumpFailure.message}`, { cause: dumpFailure })
      dump.child.kill('SIGKILL')
      throw storeError(deps.endpoint, `storing backup ${id}`, err)
    }
    const manifest: BackupManifest = {
      format: BACKUP_FORMAT,
      id,
      createdAt: new Date(started).toISOString(),
      trigger: req.trigger,
      actor: req.actor,
      namespace: deps.namespace,
      platform,
      lastSeq,
      checkpoints,
      schemas,
      dump: { key: keys.data, bytes: digest.bytes, sha256: digest.hex(), tool },
      tookMs: Date.now() - started,
    }
    // Written last: from here on the backup is complete.
    try {
      await deps.objects.put(keys.manifest, Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`), { contentType: 'application/json' })
    } catch (err) {
      throw storeError(deps.endpoint, `storing the manifest of backup ${id}`, err)
    }
    log.debug({ schemas, checkpoints: checkpoints.length }, 'backup stored')
    return manifest
  } catch (err) {
    // What a failed backup wrote is removed when the store still answers; else pruning does it later.
    await deps.objects.delete(keys.data).catch(() => {})
    throw err
  } finally {
    await snap.query('ROLLBACK').catch(() => {})
    snap.release()
  }
}

/** This platform's complete backups, newest first. Manifests that fail their checks are left out (and logged). */
export async function listBackups(deps: BackupDeps): Promise<BackupManifest[]> {
  const { platform } = await platformIdentity(deps.store)
  return (await manifests(deps)).filter((m) => m.platform === platform)
}

/** Every backup manifest under this namespace (of any platform), newest first. */
function manifests(deps: BackupDeps): Promise<BackupManifest[]> {
  return listManifests(deps, deps.namespace, 'backups', parseBackupManifest)
}

/**
 * Keeps the newest `keep` complete backups of this platform and deletes the others (manifest first,
 * so a backup half-deleted is never taken for complete), and removes data objects that a failed
 * backup left without a manifest. Answers the ids deleted.
 */
export async function pruneBackups(deps: BackupDeps, ctx: EventContext): Promise<string[]> {
  const all = await listBackups(deps)
  const doomed = all.slice(deps.keep)
  for (const m of doomed) {
    const keys = keysOf(deps.namespace, m.id, 'dump')
    try {
      await deps.objects.delete(keys.manifest)
      await deps.objects.delete(keys.data)
    } catch (err) {
      throw storeError(deps.endpoint, `deleting backup ${m.id}`, err)
    }
    await deps.store.append(BACKUPS_STREAM, [{ type: 'BackupDeleted', data: { id: m.id } }], { ...ctx, expectedVersion: 'any' })
    deps.log.info({ backup: m.id }, 'old backup deleted (retention)')
  }
  const complete = new Set((await manifests(deps)).map((m) => m.id))
  for await (const o of deps.objects.list(`${deps.namespace}/`)) {
    const id = o.key.slice(deps.namespace.length + 1, -'.dump'.length)
    if (o.key.endsWith('.dump') && !complete.has(id) && Date.now() - o.lastModified.getTime() > ORPHAN_AGE_MS) {
      await deps.objects.delete(o.key)
      deps.log.info({ key: o.key }, 'removed the dump of a backup that did not complete')
    }
  }
  return doomed.map((m) => m.id)
}

/**
 * Replaces the read models with backup `id`; see the file comment. Refuses, changing nothing:
 * `WHARF_NOT_FOUND` (no such complete backup), `WHARF_BACKUP_CORRUPT` (manifest, size, checksum or
 * archive wrong), `WHARF_BACKUP_FOREIGN` (another platform's), `WHARF_CONFLICT` (a backup or restore
 * runs), `WHARF_UNAVAILABLE` (the store or a projector does not answer).
 */
export async function restoreBackup(deps: BackupDeps, id: string, ctx: EventContext): Promise<RestoreResult> {
  const started = Date.now()
  const log = deps.log.child({ backup: id, correlationId: ctx.correlationId })
  const manifest = await withBackupLock(deps.pool, async () => {
    const keys = keysOf(deps.namespace, id, 'dump')
    const head = await deps.objects.head(keys.manifest).catch((err) => Promise.reject(storeError(deps.endpoint, `reading backup ${id}`, err)))
    if (!head) throw new WharfError('WHARF_NOT_FOUND', `no backup ${id} (wharf admin:backups lists them)`, { details: { id } })
    const m = parseBackupManifest(
      id,
      await readText(deps.objects, keys.manifest).catch((err) => Promise.reject(storeError(deps.endpoint, `reading backup ${id}`, err))),
    )
    checkSamePlatform(m, await platformIdentity(deps.store))
    const dir = await mkdtemp(join(tmpdir(), 'wharf-restore-'))
    try {
      const file = join(dir, 'backup.dump')
      await download(deps, m, file)
      let toc: string
      try {
        toc = await pgRestoreList(file)
      } catch (err) {
        throw corrupt(m, `its dump is not a readable pg_dump archive (${(err as Error).message})`)
      }
      checkDumpSchemas(m, toc)
      const sql = join(dir, 'restore.sql')
      await pgRestoreToSql(file, sql).catch((err: Error) => Promise.reject(corrupt(m, `its dump cannot be read whole (${err.message})`)))
      log.info({ bytes: m.dump.bytes }, 'backup checked; replacing the read models')
      await holdProjections(
        deps.pool,
        async () => {
          await psqlInOneTransaction(deps.databaseUrl, DROP_WHARF_SCHEMAS, sql).catch((err: Error) =>
            Promise.reject(new WharfError('WHARF_INTERNAL', `the restore was rolled back, nothing was changed: ${err.message}`, { cause: err })),
          )
          // Checkpoints went back: tell waiting readers to forget the higher ones they saw.
          await announceCheckpointReset(deps.pool)
        },
        { names: deps.projections, ...(deps.holdTimeoutMs ? { timeoutMs: deps.holdTimeoutMs } : {}) },
      )
      return m
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
  const res = await deps.store.append(BACKUPS_STREAM, [{ type: 'BackupRestored', data: { id, seq: includedSeq(manifest) } }], {
    ...ctx,
    expectedVersion: 'any',
  })
  log.info({ from: includedSeq(manifest), to: res.lastSeq }, 'read models restored; catching up from the event log')
  await waitFor(deps.pool, res.lastSeq, { projections: deps.projections, timeoutMs: deps.catchUpTimeoutMs ?? 120_000 })
  return { manifest, seq: res.lastSeq, tookMs: Date.now() - started }
}

/** Drops Wharf's schemas (inside the restore's transaction, before the backup's are created). */
const DROP_WHARF_SCHEMAS = `DO $$
DECLARE s text;
BEGIN
  FOR s IN SELECT nspname FROM pg_namespace WHERE nspname = '${CORE_SCHEMA}' OR nspname LIKE 'rm\\_%' LOOP
    EXECUTE format('DROP SCHEMA %I CASCADE', s);
  END LOOP;
END $$;`

function corrupt(m: BackupManifest, why: string): WharfError {
  return new WharfError('WHARF_BACKUP_CORRUPT', `backup ${m.id} is not usable: ${why}; nothing was changed`, { details: { id: m.id } })
}

/** Downloads the dump to `file`, checking its size and SHA-256 against the manifest. */
async function download(deps: BackupDeps, m: BackupManifest, file: string): Promise<void> {
  const digest = new Digest()
  let body: Readable
  try {
    body = await deps.objects.get(m.dump.key)
    await pipeline(body, digest, createWriteStream(file))
  } catch (err) {
    if (isWharfError(err) && err.code === 'WHARF_NOT_FOUND') throw corrupt(m, 'its dump is missing')
    throw storeError(deps.endpoint, `reading backup ${m.id}`, err)
  }
  if (digest.bytes !== m.dump.bytes) throw corrupt(m, `its dump has ${digest.bytes} bytes, its manifest says ${m.dump.bytes}`)
  if (digest.hex() !== m.dump.sha256) throw corrupt(m, 'its dump does not match its checksum')
}
