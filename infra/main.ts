#!/usr/bin/env node
/**
 * `make up` / `make down` / `make status` / `make clean` / `make test`: starts and stops the real
 * parts and the Wharf services. The composition root for infra: reads the environment once.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createInterface } from 'node:readline/promises'
import { Command } from 'commander'
import { loadConfig, type WharfConfig } from '../core/config.js'
import { ensureImportToken } from '../core/import-token.js'
import { wharfCatalogue } from '../domain/index.js'
import { EventSubjects, JetStreamEventStore } from '../events/index.js'
import { addHost, readTopology, startHosts, stopHosts } from './hosts.js'
import { createLogger } from '../core/log.js'
import { contextFor, down, startPart, status, supervisedParts, up } from './platform.js'
import { simulatedHosts } from './parts/hosts.js'
import { natsClientUrl } from './parts/nats.js'
import { builder, router, services, workers } from './parts/services.js'
import { childrenOf, stillRuns } from './proc.js'
import { Supervisor, type SupervisorState } from './supervisor.js'
import { runTests } from './test-env.js'

const cfg = loadConfig(process.env)
const ctx = contextFor(cfg, (line) => console.log(`  ${line}`))
const program = new Command('infra').description("Wharf's real parts: start, stop, status").showHelpAfterError()

/** The one-time import token while the platform's event log is empty (made if missing), else undefined. */
async function newPlatformImportToken(cfg: WharfConfig): Promise<string | undefined> {
  try {
    const store = await JetStreamEventStore.connect({
      servers: natsClientUrl(cfg, ctx.paths),
      catalogue: wharfCatalogue(),
      subjects: new EventSubjects(cfg.namespace),
    })
    try {
      return (await store.lastSeq()) === 0 ? ensureImportToken(cfg.home) : undefined
    } finally {
      await store.close()
    }
  } catch {
    return undefined
  }
}

/** The supervisor's record (restarts per part), when it runs or ran. */
function supervisorRecord(): SupervisorState | undefined {
  try {
    return JSON.parse(readFileSync(ctx.paths.supervisor.state, 'utf8')) as SupervisorState
  } catch {
    return undefined
  }
}

async function printStatus(): Promise<boolean> {
  const rows = await status(ctx)
  const record = supervisorRecord()
  for (const { part, status: s } of rows) {
    const state = s.up ? 'up  ' : 'down'
    const r = record?.parts[part]
    const restarts =
      r && (r.restarts || r.failures)
        ? `restarts ${r.restarts}${r.lastRestartAt ? ` (last ${r.lastRestartAt}, back in ${((r.lastRestartMs ?? 0) / 1000).toFixed(1)} s)` : ''}${r.failures ? `, failed starts ${r.failures}${r.lastError ? `: ${r.lastError}` : ''}` : ''}`
        : undefined
    const extra = [s.version && `v${s.version}`, s.pid && `pid ${s.pid}`, s.detail, restarts].filter(Boolean).join(', ')
    console.log(`  ${part.padEnd(9)} ${state}  ${s.address}${extra ? `  (${extra})` : ''}`)
  }
  return rows.every((r) => r.status.up)
}

program
  .command('up')
  .description('start every part that is not running, then the Wharf services')
  .action(async () => {
    console.log(`Wharf home: ${cfg.home}`)
    const t0 = Date.now()
    const { changed } = await up(ctx)
    console.log(changed ? `\nWharf is up (${((Date.now() - t0) / 1000).toFixed(1)} s):` : '\nWharf was already up; nothing changed:')
    await printStatus()
    console.log(`\n  health:   curl http://127.0.0.1:${cfg.ports.controller}/healthz`)
    console.log(`  CLI:      bin/wharf register http://127.0.0.1:${cfg.ports.controller}  (then keys:add, apps:create)`)
    console.log(`  git push: ssh://git@127.0.0.1:${cfg.ports.builder}/<app>.git  (apps:create adds it as the remote wharf)`)
    console.log(`  logs:     ${ctx.paths.logs}/`)
    console.log(`  settings: ${ctx.paths.envFile}`)
    const importToken = await newPlatformImportToken(cfg)
    if (importToken) console.log(`  import:   this platform is new; its one-time import token (admin:import-events --import-token): ${importToken}`)
  })

program
  .command('down')
  .description('stop everything Wharf started (by recorded pid); data stays')
  .action(async () => {
    const results = await down(ctx)
    for (const r of results) console.log(`  ${r.part.padEnd(9)} ${r.result}`)
    console.log(results.some((r) => r.result === 'stopped') ? `Wharf is down; data kept in ${cfg.home}` : 'Nothing was running.')
  })

program
  .command('down-services')
  .description('stop only the Wharf services (the real parts keep running)')
  .action(async () => {
    const results = await down(ctx, [services, router, workers, builder])
    for (const r of results) console.log(`  ${r.part.padEnd(9)} ${r.result}`)
  })

program
  .command('supervise')
  .description('run the supervisor in the foreground: start again any part whose process died (make up starts it)')
  .option('--parts <names>', 'only these parts (comma list), default every part this configuration runs')
  .action(async (opts: { parts?: string }) => {
    const log = createLogger({ name: 'supervisor' })
    const quiet = contextFor(cfg, (line) => log.info(line))
    const only = opts.parts?.split(',').map((s) => s.trim())
    // The simulated hosts' engines only when named (see infra/parts/hosts.ts).
    const known = [...supervisedParts(cfg), simulatedHosts]
    const parts = only ? known.filter((p) => only.includes(p.name)) : supervisedParts(cfg)
    if (only && parts.length !== only.length) throw new Error(`unknown part in --parts ${opts.parts}; known: ${known.map((p) => p.name).join(', ')}`)
    const sup = new Supervisor({
      parts: parts.map((p) => ({
        name: p.name,
        processes: () => p.processes?.(quiet) ?? [],
        // Under the part's start lock: a `make up` starting it meanwhile goes first or second, never alongside.
        start: () => startPart(quiet, p, 'supervisor'),
        ...(p.orphanedWorkers ? { orphanedWorkers: true } : {}),
      })),
      log: (level, fields, msg) => log[level](fields, msg),
      onChange: (state) => writeFileSync(ctx.paths.supervisor.state, `${JSON.stringify(state, null, 2)}\n`),
      children: childrenOf,
      stillRuns,
      kill: (pid) => {
        try {
          process.kill(pid, 'SIGKILL')
        } catch {}
      },
    })
    writeFileSync(ctx.paths.supervisor.state, `${JSON.stringify(sup.state(), null, 2)}\n`)
    log.info({ parts: parts.map((p) => p.name) }, 'supervising')
    sup.run()
    const stop = () => void sup.stop().then(() => process.exit(0))
    process.once('SIGTERM', stop)
    process.once('SIGINT', stop)
  })

program
  .command('status')
  .description('show each part as up or down, with its address and version')
  .action(async () => {
    if (!(await printStatus())) process.exitCode = 3
  })

program
  .command('clean')
  .description('stop everything and delete $WHARF_HOME (all events, read models, images)')
  .option('-y, --yes', 'do not ask for confirmation')
  .action(async (opts: { yes?: boolean }) => {
    if (!existsSync(cfg.home)) return console.log(`Nothing to clean: ${cfg.home} does not exist.`)
    if (!opts.yes) {
      if (!process.stdin.isTTY) throw new Error('refusing to delete without confirmation: run `make clean` in a terminal, or `make clean YES=1`')
      const rl = createInterface({ input: process.stdin, output: process.stdout })
      const answer = await rl.question(`This deletes ${cfg.home}: every event, read model and image. Type "yes" to go on: `)
      rl.close()
      if (answer.trim() !== 'yes') return console.log('Not deleted.')
    }
    await down(ctx)
    rmSync(cfg.home, { recursive: true, force: true, maxRetries: 3 })
    console.log(`Deleted ${cfg.home}.`)
  })

program
  .command('test')
  .description('start the real parts on free ports under a temporary home, run the tests, stop, print "N passed, N failed"')
  .argument('[tap-args...]', 'test files or tap options (default: every test)')
  .allowUnknownOption()
  .action(async (args: string[]) => {
    process.exitCode = await runTests(cfg, args)
  })

/** Where `hosts:up` keeps the simulated hosts: `$WHARF_HOME/hosts`. */
const hostsDir = `${cfg.home}/hosts`
const labelsOf = (raw: string | undefined): Record<string, string>[] =>
  (raw ?? '').split(';').map((one) =>
    Object.fromEntries(
      one
        .split(',')
        .filter(Boolean)
        .map((kv) => {
          const m = /^([a-z][a-z0-9_.-]{0,62})=([A-Za-z0-9_.-]{1,63})$/.exec(kv)
          if (!m) throw new Error(`--labels: ${JSON.stringify(kv)} is not key=value (letters, digits, _ . -)`)
          return [m[1]!, m[2]!]
        }),
    ),
  )

program
  .command('hosts:up')
  .description('simulated hosts on this machine: network namespaces with a Docker engine each, joined into one swarm (root only)')
  .option('--count <n>', 'how many hosts (1-9)', '3')
  .option('--subnet <a.b.c>', "the hosts' /24 (first three octets, 192.168.x or 172.16-31.x)", '192.168.217')
  .option('--prefix <name>', 'namespace and link names start with it', 'wharf')
  .option('--labels <list>', "node labels per host: 'zone=a;zone=b;zone=c'")
  .option('--registry', "let the hosts pull from this platform's registry at their 127.0.0.1")
  .action(async (opts: { count: string; subnet: string; prefix: string; labels?: string; registry?: boolean }) => {
    const t = await startHosts({
      dir: hostsDir,
      count: Number(opts.count),
      subnet: opts.subnet,
      prefix: opts.prefix,
      labels: labelsOf(opts.labels),
      ...(opts.registry ? { registryPort: cfg.ports.registry } : {}),
      say: (l) => console.log(`  ${l}`),
    })
    for (const h of t.hosts) console.log(`  ${h.name.padEnd(3)} ${h.address.padEnd(15)} ${h.role.padEnd(7)} WHARF_DOCKER_HOST=${h.dockerHost}`)
  })

program
  .command('hosts:add')
  .description('one more simulated host, joined to the swarm of hosts:up as a worker')
  .option('--labels <list>', "its node labels: 'zone=b'")
  .action(async (opts: { labels?: string }) => {
    const t = readTopology(hostsDir)
    if (!t) throw new Error(`no simulated hosts under ${hostsDir}: run hosts:up first`)
    const t0 = Date.now()
    const h = await addHost(t, { labels: labelsOf(opts.labels)[0] ?? {} })
    console.log(`  ${h.name} ${h.address} joined as a worker in ${((Date.now() - t0) / 1000).toFixed(1)} s; WHARF_DOCKER_HOST=${h.dockerHost}`)
  })

program
  .command('hosts:down')
  .description('stop the simulated hosts by pid and delete their namespaces, links, cgroups and data')
  .action(async () => {
    const t = readTopology(hostsDir)
    if (!t) return console.log('No simulated hosts.')
    await stopHosts(t, { graceful: true })
    console.log(`Took down ${t.hosts.length} simulated hosts.`)
  })

program.parseAsync(process.argv).catch((err: Error) => {
  console.error(`error: ${err.message}`)
  process.exit(1)
})
