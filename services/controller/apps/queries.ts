import type pg from 'pg'
import { visibleAppsSql } from '../visibility.js'
import type { WharfConfig } from '../../../core/config.js'
import { configHash } from '../../../domain/app/decider.js'
import type { AppRow } from './access.js'

/** Read-model queries of the app routes. Callers check access first (`visibleApp`). */

export function appUrl(cfg: WharfConfig, app: string): string {
  return `http://${app}.${cfg.domain}:${cfg.ports.router}`
}

export interface ReleaseView {
  app: string
  version: number
  image: string | null
  digest: string | null
  port: number | null
  procfile: Record<string, string>
  configKeys: string[]
  configHash: string
  limits: { memory: Record<string, string>; cpu: Record<string, number> }
  by: string
  summary: string
  build: string | null
  rollbackOf: number | null
  created: string
  config: Record<string, string>
}

const RELEASE_COLUMNS = 'app, version, image, digest, port, procfile, config, limits, created_by, summary, build, rollback_of, created_at'

function releaseOf(r: Record<string, any>): ReleaseView {
  const config = r.config as Record<string, string>
  return {
    app: r.app,
    version: r.version,
    image: r.image,
    digest: r.digest,
    port: r.port,
    procfile: r.procfile,
    configKeys: Object.keys(config).sort(),
    configHash: configHash(config),
    limits: r.limits,
    by: r.created_by,
    summary: r.summary,
    build: r.build,
    rollbackOf: r.rollback_of,
    created: (r.created_at as Date).toISOString(),
    config,
  }
}

/** Releases of an app, newest first. */
export async function listReleases(pool: pg.Pool, app: string, limit = 100): Promise<ReleaseView[]> {
  const { rows } = await pool.query(`SELECT ${RELEASE_COLUMNS} FROM rm_releases.releases WHERE app = $1 ORDER BY version DESC LIMIT $2`, [app, limit])
  return rows.map(releaseOf)
}

/** One release, or the newest when `version` is undefined. */
export async function getRelease(pool: pg.Pool, app: string, version?: number): Promise<ReleaseView | undefined> {
  const { rows } =
    version === undefined
      ? await pool.query(`SELECT ${RELEASE_COLUMNS} FROM rm_releases.releases WHERE app = $1 ORDER BY version DESC LIMIT 1`, [app])
      : await pool.query(`SELECT ${RELEASE_COLUMNS} FROM rm_releases.releases WHERE app = $1 AND version = $2`, [app, version])
  return rows[0] ? releaseOf(rows[0]) : undefined
}

/** A release as the API shows it in listings: config keys and hash, not values. */
export function releaseSummary(r: ReleaseView): Omit<ReleaseView, 'config'> {
  const { config: _config, ...rest } = r
  return rest
}

export async function getConfig(pool: pg.Pool, app: string): Promise<Record<string, string>> {
  const { rows } = await pool.query('SELECT key, value FROM rm_config.config WHERE app = $1 ORDER BY key', [app])
  return Object.fromEntries(rows.map((r) => [r.key, r.value]))
}

export async function getFormation(pool: pg.Pool, app: string): Promise<Record<string, number>> {
  const { rows } = await pool.query('SELECT type, quantity FROM rm_formation.formation WHERE app = $1 ORDER BY type', [app])
  return Object.fromEntries(rows.map((r) => [r.type, r.quantity]))
}

export async function getDomains(pool: pg.Pool, app: string): Promise<{ domain: string; created: string }[]> {
  const { rows } = await pool.query('SELECT domain, created_at FROM rm_domains.domains WHERE app = $1 ORDER BY domain', [app])
  return rows.map((r) => ({ domain: r.domain, created: (r.created_at as Date).toISOString() }))
}

export async function getCollaborators(pool: pg.Pool, app: string): Promise<string[]> {
  const { rows } = await pool.query('SELECT username FROM rm_access.collaborators WHERE app = $1 ORDER BY username', [app])
  return rows.map((r) => r.username as string)
}

export async function getProcesses(pool: pg.Pool, app: string) {
  const { rows } = await pool.query(
    'SELECT container, type, release, host, port, started_at FROM rm_containers.containers WHERE app = $1 ORDER BY type, started_at',
    [app],
  )
  return rows.map((r) => ({
    container: r.container as string,
    type: r.type as string,
    release: r.release as number,
    host: r.host as string,
    port: r.port as number,
    started: (r.started_at as Date).toISOString(),
  }))
}

/** Live apps the user may see (all for admins), by name. */
export async function listApps(pool: pg.Pool, user: { username: string; admin: boolean }): Promise<Omit<AppRow, 'maintenance'>[]> {
  const { rows } = user.admin
    ? await pool.query('SELECT name, owner, created_at FROM rm_apps.apps WHERE destroyed_at IS NULL ORDER BY name')
    : await pool.query(`SELECT name, owner, created_at FROM rm_apps.apps WHERE name IN (${visibleAppsSql('$1')}) ORDER BY name`, [user.username])
  return rows.map((r) => ({ name: r.name, owner: r.owner, created: (r.created_at as Date).toISOString() }))
}

/** What `GET /v1/apps/:app` answers. */
export async function appInfo(pool: pg.Pool, cfg: WharfConfig, row: AppRow) {
  const [release, domains, formation, collaborators] = await Promise.all([
    getRelease(pool, row.name),
    getDomains(pool, row.name),
    getFormation(pool, row.name),
    getCollaborators(pool, row.name),
  ])
  return {
    name: row.name,
    owner: row.owner,
    created: row.created,
    url: appUrl(cfg, row.name),
    maintenance: row.maintenance,
    release: release ? releaseSummary(release) : null,
    domains: domains.map((d) => d.domain),
    formation,
    collaborators,
  }
}

/** A TLS certificate as the API shows it: never its key (nor, for brevity, its PEM chain). */
export interface CertView {
  name: string
  commonName: string
  sans: string[]
  notBefore: string
  notAfter: string
  fingerprint: string
  /** Whether `notAfter` has passed (the router stops serving it then). */
  expired: boolean
  /** The domains it serves, sorted. */
  domains: string[]
  created: string
}

/** The certificates of an app, by name, with the domains each serves. */
export async function listCerts(pool: pg.Pool, app: string): Promise<CertView[]> {
  const { rows } = await pool.query(
    `SELECT c.name, c.common_name, c.sans, c.not_before, c.not_after, c.fingerprint, c.created_at, c.not_after <= now() AS expired,
            COALESCE(array_agg(a.domain ORDER BY a.domain) FILTER (WHERE a.domain IS NOT NULL), '{}') AS domains
       FROM rm_certs.certs c LEFT JOIN rm_certs.attachments a ON a.app = c.app AND a.name = c.name
      WHERE c.app = $1
      GROUP BY c.app, c.name
      ORDER BY c.name`,
    [app],
  )
  return rows.map((r) => ({
    name: r.name,
    commonName: r.common_name,
    sans: r.sans,
    notBefore: (r.not_before as Date).toISOString(),
    notAfter: (r.not_after as Date).toISOString(),
    fingerprint: r.fingerprint,
    expired: r.expired,
    domains: r.domains,
    created: (r.created_at as Date).toISOString(),
  }))
}
