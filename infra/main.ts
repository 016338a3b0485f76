#!/usr/bin/env node
/**
 * `make up` / `make down` / `make status` / `make clean` / `make test`: starts and stops the real
 * parts and the Wharf services. The composition root for infra: reads the environment once.
 */
import { existsSync, rmSync } from 'node:fs'
import { createInterface } from 'node:readline/promises'
import { Command } from 'commander'
import { loadConfig, type WharfConfig } from '../core/config.js'
import { ensureImportToken } from '../core/import-token.js'
import { wharfCatalogue } from '../domain/index.js'
import { EventSubjects, JetStreamEventStore } from '../events/index.js'
import { contextFor, down, status, up } from './platform.js'
import { services } from './parts/services.js'
import { runTests } from './test-env.js'

const cfg = loadConfig(process.env)
const ctx = contextFor(cfg, (line) => console.log(`  ${line}`))
const program = new Command('infra').description("Wharf's real parts: start, stop, status").showHelpAfterError()

/** The one-time import token while the platform's event log is empty (made if missing), else undefined. */
async function newPlatformImportToken(cfg: WharfConfig): Promise<string | undefined> {
  try {
    const store = await JetStreamEventStore.connect({ servers: cfg.natsUrl, catalogue: wharfCatalogue(), subjects: new EventSubjects(cfg.namespace) })
    try {
      return (await store.lastSeq()) === 0 ? ensureImportToken(cfg.home) : undefined
    } finally {
      await store.close()
    }
  } catch {
    return undefined
  }
}

async function printStatus(): Promise<boolean> {
  const rows = await status(ctx)
  for (const { part, status: s } of rows) {
    const state = s.up ? 'up  ' : 'down'
    const extra = [s.version && `v${s.version}`, s.pid && `pid ${s.pid}`, s.detail].filter(Boolean).join(', ')
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
    const results = await down(ctx, [services])
    for (const r of results) console.log(`  ${r.part.padEnd(9)} ${r.result}`)
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

program.parseAsync(process.argv).catch((err: Error) => {
  console.error(`error: ${err.message}`)
  process.exit(1)
})
