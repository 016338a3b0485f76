/**
 * The push benchmark (`npm run bench:push`): `git push` of a trivial Dockerfile app over SSH to the
 * running platform's builder (`make up`), timed in phases, median of 5 pushes (each a new commit, so
 * each builds; one push before them creates the repo and warms the cache).
 *
 * Phases, as the builder measures them: ssh+receive (SSH session start -> pre-receive hook), build
 * (docker build), registry (push + inspect), release (BuildSucceeded -> release in the read model).
 * Total is the client's wall time of `git push`; overhead = total - build - deploy (the deploy and route, when
 * the scheduler runs, is reported apart: it is the app starting). Target: overhead p50 <= 1.5 s.
 * It registers a user of its own (with a fresh SSH key), creates an app and destroys it at the end.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../core/config.js'
import { withPlatformEnv } from '../core/platform-env.js'
import { apiCaller, median } from './common.js'
import { commit, gitPush, makeRepo, makeSshKey, sshSign } from '../test/git.js'

const cfg = loadConfig(withPlatformEnv(process.env))
const base = process.env.WHARF_URL ?? `http://127.0.0.1:${cfg.ports.controller}`
const RUNS = 5
const TARGET_OVERHEAD_MS = 1_500

const must = apiCaller(base)

const sec = (ms: number) => `${(ms / 1000).toFixed(2)} s`

const suffix = `${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}`
const username = `bench-${suffix}`
const app = `benchpush-${suffix}`
const dir = mkdtempSync(join(tmpdir(), 'wharf-bench-push-'))
let token: string | undefined
try {
  const password = `pw-${suffix}-${Math.random().toString(36).slice(2)}`
  await must('POST', '/v1/auth/register', undefined, { username, password, email: `${username}@bench.invalid` })
  token = (await must<{ token: string }>('POST', '/v1/auth/login', undefined, { username, password })).token
  const key = makeSshKey(join(dir, 'ssh'))
  const { challenge } = await must<{ challenge: string }>('GET', '/v1/keys/challenge', token)
  await must('POST', '/v1/keys', token, { key: key.publicKey, challenge, signature: sshSign(key.path, challenge) })
  await must('POST', '/v1/apps', token, { name: app })
  const repo = join(dir, 'repo')
  makeRepo(repo, { Dockerfile: 'FROM busybox\nCOPY . /app\nCMD ["httpd", "-f", "-p", "5000", "-h", "/app"]\n', 'index.html': 'warm-up\n' })
  const url = `ssh://git@127.0.0.1:${cfg.ports.builder}/${app}.git`

  const rows: { total: number; receive: number; build: number; registry: number; release: number; deploy: number }[] = []
  for (let i = 0; i <= RUNS; i++) {
    if (i > 0) commit(repo, { 'index.html': `push ${i} ${Date.now()}\n` })
    const r = await gitPush(repo, url, key.path)
    if (r.code !== 0) throw new Error(`push ${i} failed:\n${r.output}`)
    const m = /\(receive ([\d.]+) s, build ([\d.]+) s, registry ([\d.]+) s, release ([\d.]+) s(?:, deploy ([\d.]+) s)?(?:, route ([\d.]+) s)?\)/.exec(r.output)
    if (!m) throw new Error(`push ${i}: no phase line in the output:\n${r.output}`)
    const [receive, build, registry, release, deploy, route] = m.slice(1).map((x) => Number(x ?? 0) * 1000) as [number, number, number, number, number, number]
    if (i === 0) {
      console.log(`warm-up push (creates the repo): ${sec(r.ms)}`)
      continue
    }
    rows.push({ total: r.ms, receive, build, registry, release, deploy: deploy + route })
    console.log(
      `push ${i}: total ${sec(r.ms)} = ssh+receive ${sec(receive)}, build ${sec(build)}, registry ${sec(registry)}, release ${sec(release)}, deploy ${sec(deploy)}, rest ${sec(r.ms - receive - build - registry - release - deploy)}`,
    )
  }
  const med = (k: keyof (typeof rows)[number]) => median(rows.map((r) => r[k]))
  // The deploy (scheduler, when it runs) is the app's start, not the push's overhead: reported apart.
  const overhead = median(rows.map((r) => r.total - r.build - r.deploy))
  console.log(`\nmedian of ${RUNS} pushes of a trivial Dockerfile app:`)
  console.log(`  ssh+receive      ${sec(med('receive'))}`)
  console.log(`  docker build     ${sec(med('build'))}`)
  console.log(`  registry push    ${sec(med('registry'))}`)
  console.log(`  release created  ${sec(med('release'))}`)
  console.log(`  deploy (to DeployCompleted, when the scheduler runs) ${sec(med('deploy'))}`)
  console.log(`  total (client)   ${sec(med('total'))}`)
  console.log(
    `  platform overhead (total - build - deploy) p50 ${sec(overhead)}  target <= ${sec(TARGET_OVERHEAD_MS)}: ${overhead <= TARGET_OVERHEAD_MS ? 'met' : 'MISSED'}`,
  )
} finally {
  if (token) await must('DELETE', `/v1/apps/${app}`, token, { confirm: app }).catch((err: Error) => console.error(`could not destroy ${app}: ${err.message}`))
  rmSync(dir, { recursive: true, force: true })
}
