/**
 * The builder's SSH server (ssh2): public-key authentication by the key's SHA256 fingerprint (the
 * keys read model), then only `git-receive-pack` / `git-upload-pack` on an app's repo for users who
 * may use the app. Every refusal is one line on the client's terminal and a non-zero exit.
 */
import { spawn } from 'node:child_process'
import { createHash, randomUUID } from 'node:crypto'
import { existsSync } from 'node:fs'
import type { Readable, Writable } from 'node:stream'
import type pg from 'pg'
import ssh2 from 'ssh2'
import type { WharfConfig } from '../../core/config.js'
import { isWharfError } from '../../core/errors.js'
import type { Logger } from '../../core/log.js'
import { keyOwner, visibleApp } from '../../projections/index.js'
import { buildPush, type BuildDeps } from './build.js'
import { parseGitCommand, printable } from './command.js'
import { ZERO_SHA, type HookServer, type HookSession } from './hook.js'
import { acquirePushLock } from '../../core/pushlock.js'
import { BuildOutput } from './output.js'
import { ensureRepo, PushedTree, repoOwner, repoPath } from './repo.js'
import { IdleTimer, PushSlots } from './slots.js'

export interface SshServerDeps extends BuildDeps {
  cfg: WharfConfig
  pool: pg.Pool
  log: Logger
  hooks: HookServer
  hostKey: string
  /** How long a second push to an app waits for the first, ms (default 10 min). */
  lockTimeoutMs?: number
}

/** What one SSH server shares between its connections. */
interface ServerState {
  slots: PushSlots
}

interface Identity {
  username: string
  admin: boolean
  fingerprint: string
}

/** `SHA256:<unpadded base64>` of a public key blob, as `ssh-keygen -l` prints it. */
export function fingerprintOf(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`
}

async function lookupKey(pool: pg.Pool, fingerprint: string): Promise<(Identity & { publicKey: string }) | undefined> {
  const owner = await keyOwner(pool, fingerprint)
  return owner && { ...owner, fingerprint }
}

export interface RunningSshServer {
  port: number
  /** Stops accepting connections, interrupts pushes in flight, and waits for them to end. */
  close(): Promise<void>
}

export async function startSshServer(deps: SshServerDeps): Promise<RunningSshServer> {
  const sessions = new Set<Promise<unknown>>()
  const clients = new Set<ssh2.Connection>()
  const state: ServerState = { slots: new PushSlots(deps.cfg.pushes) }
  const server = new ssh2.Server({ hostKeys: [deps.hostKey], ident: 'Wharf' }, (client, info) => {
    clients.add(client)
    const startedAt = Date.now()
    const connLog = deps.log.child({ remote: `${info.ip}:${info.port}` })
    let who: Identity | undefined
    // A connection that signs in and runs nothing (or never signs in) is closed after the idle time.
    let execs = 0
    const unused = setTimeout(() => {
      if (execs > 0) return
      connLog.info({ idleMs: deps.cfg.pushes.idleMs }, 'ssh: connection ran no command in time; closed')
      client.end()
    }, deps.cfg.pushes.idleMs)
    unused.unref()
    client.on('authentication', (ctx) => {
      if (ctx.method !== 'publickey') return ctx.reject(['publickey'])
      const fingerprint = fingerprintOf(ctx.key.data)
      lookupKey(deps.pool, fingerprint)
        .then((found) => {
          if (!found) {
            connLog.info({ fingerprint }, 'ssh: unknown key')
            return ctx.reject(['publickey'])
          }
          if (ctx.signature) {
            const key = ssh2.utils.parseKey(found.publicKey)
            if (key instanceof Error || Array.isArray(key) || key.verify(ctx.blob!, ctx.signature, ctx.hashAlgo) !== true) return ctx.reject(['publickey'])
            who = found
          }
          ctx.accept()
        })
        .catch((err) => {
          connLog.error({ err }, 'ssh: key lookup failed')
          ctx.reject(['publickey'])
        })
    })
    client.on('ready', () => {
      client.on('session', (acceptSession) => {
        const session = acceptSession()
        session.on('pty', (accept) => accept?.())
        session.on('env', (accept) => accept?.())
        session.on('shell', (accept) => {
          const ch = accept()
          ch.stderr.write(`Hi ${who?.username}! You are signed in, but Wharf gives no shell. Push with: git push wharf main\n`)
          ch.exit(1)
          ch.end()
        })
        session.on('exec', (accept, _reject, { command }) => {
          const ch = accept()
          execs++
          const correlationId = randomUUID()
          const log = connLog.child({ user: who?.username, correlationId })
          const run = handleExec(deps, state, ch, who!, command, { log, startedAt, correlationId })
            .catch((err) => {
              log.error({ err }, 'ssh: exec failed')
              return refuse(ch, isWharfError(err) ? `${err.message} (${err.code})` : 'the builder failed; try again')
            })
            .finally(() => sessions.delete(run))
          sessions.add(run)
        })
      })
    })
    client.on('error', (err) => connLog.debug({ err }, 'ssh: connection error'))
    client.on('close', () => {
      clearTimeout(unused)
      clients.delete(client)
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(deps.cfg.ports.builder, deps.cfg.host, () => resolve())
  })
  const port = (server.address() as { port: number }).port
  return {
    port,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        for (const c of clients) c.end()
      })
      await Promise.allSettled([...sessions])
    },
  }
}

type Channel = ssh2.ServerChannel

function refuse(ch: Channel, message: string): number {
  if (!ch.destroyed) {
    ch.stderr.write(`wharf: ${message}\n`)
    ch.exit(1)
    ch.end()
  }
  return 1
}

async function handleExec(
  deps: SshServerDeps,
  state: ServerState,
  ch: Channel,
  who: Identity,
  command: string,
  ctx: { log: Logger; startedAt: number; correlationId: string },
): Promise<number> {
  const parsed = parseGitCommand(command)
  if (!parsed.ok) return refuse(ch, parsed.reason)
  const { app, service } = parsed
  let created: string
  try {
    created = (await visibleApp(deps.pool, { username: who.username, admin: who.admin }, app, 'use')).created
  } catch (err) {
    if (isWharfError(err) && (err.code === 'WHARF_NOT_FOUND' || err.code === 'WHARF_FORBIDDEN')) {
      return refuse(ch, `no app ${app} that ${who.username} may ${service === 'git-receive-pack' ? 'push to' : 'fetch'} (wharf apps:list shows yours)`)
    }
    throw err
  }
  if (service === 'git-upload-pack') {
    const repo = repoPath(deps.cfg.home, app)
    if (!existsSync(repo) || (await repoOwner(repo)) !== created) return refuse(ch, `${app} has no pushes yet: nothing to fetch`)
    return pipeGit(ch, ['upload-pack', repo], {}, idleTimer(deps, ch, ctx.log))
  }
  // Over the user's or the builder's bound: refused now, with WHARF_BUSY (a push that waited would hold its connection).
  const giveBack = state.slots.take(who.username)
  try {
    const aborted = new AbortController()
    ch.on('close', () => aborted.abort())
    ctx.log.info({ app }, 'push: started')
    // Waiting for another push to the app is the server's doing, not the client's silence: no idle timer yet.
    const lock = await acquirePushLock(deps.pool, deps.cfg.namespace, app, {
      signal: aborted.signal,
      ...(deps.lockTimeoutMs === undefined ? {} : { timeoutMs: deps.lockTimeoutMs }),
      onWait: () => ch.stderr.write(`wharf: another push to ${app} is running; waiting for it to finish\n`),
    })
    try {
      const repo = await ensureRepo(deps.cfg.home, app, created)
      const idle = idleTimer(deps, ch, ctx.log)
      const expected = deps.hooks.expect()
      void expected.hook.then(async (hook) => {
        // The build is the server's work: the client may be silent meanwhile.
        idle.pause()
        try {
          await onHook(deps, hook, { app, who, repo, ...ctx })
        } finally {
          idle.resume()
        }
      })
      try {
        // receive.maxInputSize: git refuses a pack larger than WHARF_PUSH_MAX_MB before the hook runs.
        return await pipeGit(
          ch,
          ['-c', `receive.maxInputSize=${deps.cfg.limits.pushBytes}`, 'receive-pack', repo],
          { WHARF_PUSH_SOCKET: deps.hooks.path, WHARF_PUSH_TOKEN: expected.token },
          idle,
        )
      } finally {
        expected.cancel()
      }
    } finally {
      await lock.release()
    }
  } finally {
    giveBack()
  }
}

/** The idle timer of one git command: after `WHARF_PUSH_IDLE_TIMEOUT` of silence both ways, says so and closes the channel. */
function idleTimer(deps: SshServerDeps, ch: Channel, log: Logger): IdleTimer {
  const seconds = Math.round(deps.cfg.pushes.idleMs / 1000)
  return new IdleTimer(deps.cfg.pushes.idleMs, () => {
    log.info({ idleMs: deps.cfg.pushes.idleMs }, 'ssh: client idle; closed')
    refuse(ch, `nothing received from the client for ${seconds} s; the connection is closed (WHARF_PUSH_IDLE_TIMEOUT=${seconds}) (WHARF_TIMEOUT)`)
    ch.close()
  })
}

/** Runs `git <args>` with the channel as its stdio; exits the channel with git's exit code. */
function pipeGit(ch: Channel, args: string[], env: Record<string, string>, idle: IdleTimer): Promise<number> {
  const child = spawn('git', args, { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, stdio: ['pipe', 'pipe', 'pipe'] })
  ;(ch as unknown as Readable).pipe(child.stdin)
  child.stdin.on('error', () => {})
  child.stdout.pipe(ch as unknown as Writable, { end: false })
  child.stderr.pipe(ch.stderr as unknown as Writable, { end: false })
  const touch = () => idle.touch()
  ch.on('data', touch)
  child.stdout.on('data', touch)
  child.stderr.on('data', touch)
  const onClose = () => child.exitCode === null && child.kill('SIGTERM')
  ch.on('close', onClose)
  return new Promise((resolve) => {
    child.on('close', (code) => {
      idle.stop()
      ch.off('close', onClose)
      const exit = code ?? 1
      if (!ch.destroyed) {
        ch.exit(exit)
        ch.end()
      }
      resolve(exit)
    })
  })
}

/** The pre-receive hook of a push: build `main` (or `master`), accept the push only if it released. */
async function onHook(
  deps: SshServerDeps,
  hook: HookSession,
  p: { app: string; who: Identity; repo: string; log: Logger; startedAt: number; correlationId: string },
): Promise<void> {
  const target = hook.refs.find((r) => r.ref === 'refs/heads/main') ?? hook.refs.find((r) => r.ref === 'refs/heads/master')
  if (!target) {
    const names = hook.refs.map((r) => r.ref.replace(/^refs\/(heads|tags)\//, '')).join(', ')
    hook.write(`wharf: only main (or master) is built and released; you pushed ${printable(names)}. Push with: git push wharf <branch>:main\n`)
    return hook.exit(1)
  }
  if (target.new === ZERO_SHA) {
    hook.write(`wharf: ${target.ref.slice('refs/heads/'.length)} cannot be deleted\n`)
    return hook.exit(1)
  }
  try {
    const result = await buildPush(deps, {
      app: p.app,
      sha: target.new,
      user: p.who.username,
      fingerprint: p.who.fingerprint,
      tree: new PushedTree(p.repo, target.new, hook.gitEnv),
      out: new BuildOutput((text) => hook.write(text), { drained: () => hook.drained(), maxLogBytes: deps.cfg.limits.buildLogBytes }),
      signal: hook.signal,
      correlationId: p.correlationId,
      startedAt: p.startedAt,
    })
    hook.exit(result.ok ? 0 : 1)
  } catch (err) {
    p.log.error({ err }, 'push: build broke')
    hook.write(`wharf: the build broke: ${(err as Error).message}\n`)
    hook.exit(1)
  }
}
