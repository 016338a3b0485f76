import Type from 'typebox'
import { appUrl } from '../../../core/config.js'
import { formations, lastDeploys, listApps, maintenanceApps, newestReleases, upCounts } from '../../../projections/index.js'
import { signedIn } from '../apps/access.js'
import { ErrorOut } from '../apps/schemas.js'
import type { RoutePlugin } from '../context.js'

const Processes = Type.Record(Type.String(), Type.Object({ running: Type.Integer(), desired: Type.Integer() }, { additionalProperties: false }))
const Overview = Type.Object(
  {
    name: Type.String(),
    owner: Type.String(),
    url: Type.String(),
    status: Type.Union([
      Type.Literal('up'),
      Type.Literal('degraded'),
      Type.Literal('deploying'),
      Type.Literal('failed'),
      Type.Literal('idle'),
      Type.Literal('maintenance'),
      Type.Literal('new'),
    ]),
    release: Type.Union([
      Type.Object({ version: Type.Integer(), summary: Type.String(), created: Type.String() }, { additionalProperties: false }),
      Type.Null(),
    ]),
    processes: Processes,
    lastDeploy: Type.Union([
      Type.Object(
        { outcome: Type.Union([Type.Literal('started'), Type.Literal('completed'), Type.Literal('failed')]), release: Type.Integer(), at: Type.String() },
        { additionalProperties: false },
      ),
      Type.Null(),
    ]),
  },
  { additionalProperties: false },
)
export type AppOverview = {
  name: string
  owner: string
  url: string
  status: 'up' | 'degraded' | 'deploying' | 'failed' | 'idle' | 'maintenance' | 'new'
  release: { version: number; summary: string; created: string } | null
  processes: Record<string, { running: number; desired: number }>
  lastDeploy: { outcome: 'started' | 'completed' | 'failed'; release: number; at: string } | null
}

/** An app's state at a glance, from its processes and its last deploy. */
export function statusOf(a: Omit<AppOverview, 'status'>, maintenance: boolean): AppOverview['status'] {
  if (maintenance) return 'maintenance'
  if (!a.release || a.release.version <= 1) return a.lastDeploy ? 'up' : 'new'
  if (a.lastDeploy?.outcome === 'started') return 'deploying'
  if (a.lastDeploy?.outcome === 'failed') return 'failed'
  const ps = Object.values(a.processes)
  if (ps.every((p) => p.desired === 0)) return 'idle'
  return ps.every((p) => p.running >= p.desired) ? 'up' : 'degraded'
}

/**
 * `GET /v1/overview/apps`: every app the caller may see with its status, newest release, processes
 * running/desired and last deploy, in five queries whatever the number of apps (the dashboard's
 * first page).
 */
export const overviewRoutes: RoutePlugin = (api, deps) => {
  api.get(
    '/overview/apps',
    {
      schema: {
        summary: 'Apps the caller may see, each with status, newest release, processes (running/desired) and last deploy.',
        response: { 200: Type.Object({ apps: Type.Array(Overview) }, { additionalProperties: false }), 401: ErrorOut },
      },
    },
    async (req) => {
      const apps = await listApps(deps.pool, signedIn(req))
      const names = apps.map((a) => a.name)
      const [releases, forms, ups, deploys, maint] = await Promise.all([
        newestReleases(deps.pool, names),
        formations(deps.pool, names),
        upCounts(deps.pool, names),
        lastDeploys(deps.pool, names),
        maintenanceApps(deps.pool),
      ])
      const inMaintenance = new Set(maint.map((m) => m.app))
      return {
        apps: apps.map((a): AppOverview => {
          const r = releases.get(a.name)
          const d = deploys.get(a.name)
          const desired = forms.get(a.name) ?? {}
          const up = ups.get(a.name) ?? {}
          const processes: AppOverview['processes'] = {}
          for (const type of new Set([...Object.keys(desired), ...Object.keys(up)])) processes[type] = { running: up[type] ?? 0, desired: desired[type] ?? 0 }
          const o = {
            name: a.name,
            owner: a.owner,
            url: appUrl(deps.cfg, a.name),
            release: r ? { version: r.version, summary: r.summary, created: r.created_at.toISOString() } : null,
            processes,
            lastDeploy: d
              ? {
                  outcome: d.type === 'DeployStarted' ? ('started' as const) : d.type === 'DeployCompleted' ? ('completed' as const) : ('failed' as const),
                  release: d.release,
                  at: d.at.toISOString(),
                }
              : null,
          }
          return { ...o, status: statusOf(o, inMaintenance.has(a.name)) } satisfies AppOverview
        }),
      }
    },
  )
}
