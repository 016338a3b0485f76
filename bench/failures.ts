/**
 * `npm run bench:failures`: kills (SIGKILL) Postgres, NATS, nginx and the services process of a
 * platform of its own (under a temporary home, on free ports, watched by the supervisor) one after the
 * other while `config:set` runs 4 times a second and requests go through the router every 50 ms, and
 * prints for each part: time until it is back, time until commands succeed again, and the commands
 * and router requests that failed meanwhile. The Docker engine is the one named by WHARF_DOCKER_HOST
 * (a `make up` platform's: `set -a; . .wharf/wharf.env`); it is not killed here (see the README).
 * `WHARF_BENCH_PARTS=postgres,nats` runs only those.
 */
import { loadavg } from 'node:os'
import { killAndRecover, startDrill, type KillResult } from '../infra/failures.js'

const parts = (process.env.WHARF_BENCH_PARTS ?? 'postgres,nats,nginx,services').split(',') as ('postgres' | 'nats' | 'nginx' | 'services')[]
const d = await startDrill({ dockerHost: process.env.WHARF_DOCKER_HOST })
const rows: KillResult[] = []
try {
  for (const p of parts) {
    const r = await killAndRecover(d, p, { timeoutMs: 90_000 })
    rows.push(r)
    if (process.env.WHARF_BENCH_VERBOSE) console.error(JSON.stringify(r))
  }
} finally {
  if (!process.env.WHARF_BENCH_KEEP) await d.stop()
  else console.error(`kept ${d.home}`)
}
const s = (ms: number) => (ms < 0 ? 'never' : `${(ms / 1000).toFixed(1)} s`)
console.log(
  `load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
)
console.log('part      restarted after  back after  commands ok after  failed commands  failed router requests  /healthz 503 seen')
for (const r of rows) {
  console.log(
    `${r.part.padEnd(9)} ${s(r.restartedMs).padStart(15)}  ${s(r.backMs).padStart(10)}  ${s(r.commandsBackMs).padStart(17)}  ${`${r.commandsFailed}/${r.commandsSent}`.padStart(15)}  ${`${r.routerFailed}/${r.routerSent}`.padStart(22)}  ${r.sawUnhealthy ? 'yes' : 'no'}`,
  )
}
