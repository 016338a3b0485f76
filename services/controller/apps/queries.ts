import { appUrl, type WharfConfig } from '../../../core/config.js'
import {
  getCollaborators,
  getDomains,
  getFormation,
  getReleaseRow,
  listReleaseRows,
  type AppRow,
  type Queryable,
  type ReleaseRow,
} from '../../../projections/index.js'
import { configHash } from '../../../domain/app/decider.js'

/** Read-model queries of the app routes. Callers check access first (`visibleApp`). */

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

function releaseOf(r: ReleaseRow): ReleaseView {
  const config = r.config
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
    created: r.created_at.toISOString(),
    config,
  }
}

/** Releases of an app, newest first. */
export async function listReleases(pool: Queryable, app: string, limit = 100): Promise<ReleaseView[]> {
  return (await listReleaseRows(pool, app, limit)).map(releaseOf)
}

/** One release, or the newest when `version` is undefined. */
export async function getRelease(pool: Queryable, app: string, version?: number): Promise<ReleaseView | undefined> {
  const row = await getReleaseRow(pool, app, version)
  return row ? releaseOf(row) : undefined
}

/** A release as the API shows it in listings: config keys and hash, not values. */
export function releaseSummary(r: ReleaseView): Omit<ReleaseView, 'config'> {
  const { config: _config, ...rest } = r
  return rest
}

/** What `GET /v1/apps/:app` answers. */
export async function appInfo(pool: Queryable, cfg: WharfConfig, row: AppRow) {
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
