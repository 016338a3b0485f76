/**
 * `npm run bench:failures`: kills (SIGKILL) Postgres, NATS, nginx, the services process, the router's and the workers' of a
 * platform of its own (under a temporary home, on free ports, watched by the supervisor) one after the
 * other while `config:set` runs 4 times a second and requests go through the router every 50 ms, and
 * prints for each part: time until it is back, time until commands succeed again, and the commands
 * and router requests that failed meanwhile. The Docker engine is the one named by WHARF_DOCKER_HOST
 * (a `make up` platform's: `set -a; . .wharf/wharf.env`); that one is never killed. With
 * `WHARF_REGISTRY_PORT` (the platform's registry) it also serves an app through the router, counts
 * its failed requests, and scales it during the Postgres and services kills (the time until that
 * deploy converged, from the kill). `engine`: the Docker engine, killed on a second drill whose
 * engine is its own simulated host (root only; needs the registry too), with a scale in flight.
 * `WHARF_BENCH_PARTS=postgres,nats` runs only those (default all seven).
 */
import { loadavg } from 'node:os'
import { killAndRecover, startDrill, type KillResult } from '../infra/failures.js'

type PartName = 'postgres' | 'nats' | 'nginx' | 'services' | 'router' | 'workers' | 'engine'
const parts = (process.env.WHARF_BENCH_PARTS ?? 'postgres,nats,nginx,services,router,workers,engine').split(',') as PartName[]
// A `make up` platform's registry (its wharf.env names the port): the drill's web app is imported there.
const registry = process.env.WHARF_REGISTRY_PORT ? `127.0.0.1:${process.env.WHARF_REGISTRY_PORT}` : undefined
const registryAuth =
  process.env.WHARF_REGISTRY_USER && process.env.WHARF_REGISTRY_PASSWORD
    ? { username: process.env.WHARF_REGISTRY_USER, password: process.env.WHARF_REGISTRY_PASSWORD }
    : undefined
/** A scale of the web app in flight during these kills (as the drill tests do). */
const deploys: Partial<Record<PartName, number>> = { postgres: 2, services: 3, engine: 2 }
const rows: (KillResult & { web: boolean })[] = []

/** Kills `names` one after the other on one drill platform. */
async function drill(names: PartName[], ownEngine: boolean): Promise<void> {
  if (names.length === 0) return
  const d = await startDrill(
    ownEngine
      ? { ownEngine, ...(registry ? { registry } : {}), ...(registryAuth ? { registryAuth } : {}) }
      : { dockerHost: process.env.WHARF_DOCKER_HOST, ...(registry ? { registry } : {}), ...(registryAuth ? { registryAuth } : {}) },
  )
  try {
    for (const p of names) {
      const deployTo = d.web ? deploys[p] : undefined
      const r = await killAndRecover(d, p, { timeoutMs: 90_000, ...(deployTo ? { deployTo } : {}) })
      rows.push({ ...r, web: Boolean(d.web) })
      if (process.env.WHARF_BENCH_VERBOSE) console.error(JSON.stringify(r))
    }
  } finally {
    if (!process.env.WHARF_BENCH_KEEP) await d.stop()
    else console.error(`kept ${d.home}`)
  }
}
await drill(
  parts.filter((p) => p !== 'engine'),
  false,
)
// The engine is killed on a drill whose engine is its own (a simulated host): needs root and a registry.
if (parts.includes('engine')) {
  if (!registry) console.error('engine: skipped (no WHARF_REGISTRY_PORT: the drill imports its app into that registry)')
  else await drill(['engine'], true)
}
const s = (ms: number) => (ms < 0 ? 'never' : `${(ms / 1000).toFixed(1)} s`)
console.log(
  `load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
)
console.log(
  'part      restarted after  back after  commands ok after (after back)  failed commands  failed router requests  failed app requests  deploy converged  /healthz 503 seen',
)
for (const r of rows) {
  const deploy = r.convergeTo === undefined ? '-' : `web=${r.convergeTo} ${s(r.convergedMs ?? -1)}`
  console.log(
    `${r.part.padEnd(9)} ${s(r.restartedMs).padStart(15)}  ${s(r.backMs).padStart(10)}  ${`${s(r.commandsBackMs)} (${r.commandsAfterBackMs < 0 ? 'before' : s(r.commandsAfterBackMs)})`.padStart(30)}  ${`${r.commandsFailed}/${r.commandsSent}`.padStart(15)}  ${`${r.routerFailed}/${r.routerSent}`.padStart(22)}  ${(r.web ? `${r.appFailed}/${r.appSent}` : '-').padStart(19)}  ${deploy.padStart(16)}  ${r.sawUnhealthy ? 'yes' : 'no'}`,
  )
}
