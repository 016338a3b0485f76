import { isWharfError } from '../../core/errors.js'
import { serviceLogger, type Logger } from '../../core/log.js'
import type { ServiceDefinition } from '../runtime.js'
import { createBackup, listBackups, type BackupDeps } from './backups.js'
import { backupDeps } from './index.js'

export interface ScheduleOptions {
  deps: BackupDeps
  /** Time between backups, ms, counted from the newest backup in the store. */
  intervalMs: number
  /** How often the schedule looks whether a backup is due, ms, default min(intervalMs, 60_000). */
  checkEveryMs?: number
  log: Logger
}

/**
 * Scheduled backups: whenever the newest backup of this platform in the store is `intervalMs` old
 * (or there is none, and the log has events), one is taken; each completed backup prunes the ones
 * beyond `WHARF_BACKUP_KEEP`. The store is the clock, so a restarted process does not back up again
 * early, and processes on several hosts agree (the backup lock lets one of them at a time).
 */
export class BackupSchedule {
  #timer: NodeJS.Timeout | undefined
  #running: Promise<void> | undefined
  #stopped = false

  readonly #o: ScheduleOptions

  constructor(o: ScheduleOptions) {
    this.#o = o
  }

  start(): void {
    this.#schedule(0)
  }

  async stop(): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#timer)
    await this.#running
  }

  #schedule(ms: number): void {
    if (this.#stopped) return
    this.#timer = setTimeout(() => {
      this.#running = this.tick().finally(() => {
        this.#running = undefined
        this.#schedule(this.#o.checkEveryMs ?? Math.min(this.#o.intervalMs, 60_000))
      })
    }, ms)
    this.#timer.unref()
  }

  /** One look: backs up when due. Failures are logged (and recorded as BackupFailed), never thrown. */
  async tick(): Promise<void> {
    const { deps, log } = this.#o
    try {
      if ((await deps.store.lastSeq()) === 0) return
      const newest = (await listBackups(deps))[0]
      if (newest && Date.now() - Date.parse(newest.createdAt) < this.#o.intervalMs) return
      await createBackup(deps, { trigger: 'schedule', actor: 'system:backups' })
    } catch (err) {
      // Another process is backing up: that one counts.
      if (isWharfError(err) && err.code === 'WHARF_CONFLICT') return
      log.error({ err }, 'scheduled backup failed; the next look is in a minute')
    }
  }
}

/** Scheduled backups of the read models to the store (`WHARF_BACKUP_INTERVAL`, `WHARF_BACKUP_KEEP`). */
export const backups: ServiceDefinition = {
  name: 'backups',
  description: 'backs the read models up to the store on a schedule (WHARF_BACKUP_INTERVAL) and keeps the newest WHARF_BACKUP_KEEP',
  async start({ cfg, log: root, store, pool, catalogue, objects }) {
    const log = serviceLogger(root, 'backups')
    const off =
      cfg.backups.intervalMs === 0 ? 'WHARF_BACKUP_INTERVAL is off' : !objects ? 'no store is configured' : !cfg.databaseUrl ? 'no database URL' : undefined
    if (off) {
      log.info({ reason: off }, 'no scheduled backups')
      return { stop: async () => {} }
    }
    const schedule = new BackupSchedule({ deps: backupDeps({ cfg, pool, store, catalogue, log, objects }), intervalMs: cfg.backups.intervalMs, log })
    schedule.start()
    return { stop: () => schedule.stop() }
  },
}
