import type { Duplex } from 'node:stream'
import websocket from '@fastify/websocket'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type pg from 'pg'
import type { WebSocket } from 'ws'
import type { LimitsConfig } from '../../../core/config.js'
import { engineStatus, type ContainerEngine } from '../../../core/engine/engine.js'
import { isWharfError, WharfError, type ErrorCode } from '../../../core/errors.js'
import { newestImageVersion, visibleApp } from '../../../projections/index.js'
import { signedIn } from '../apps/access.js'
import { getRelease, type ReleaseView } from '../apps/queries.js'
import { demuxer, outputFrame, parseControl, parseStart, runContainerSpec } from '../apps/run.js'
import { STDERR, STDOUT, type ServerMessage, type StartMessage } from '../apps/run-protocol.js'
import { AppParams } from '../apps/schemas.js'
import type { RoutePlugin } from '../context.js'

/** How long the server waits for the start message after the upgrade, ms. */
const START_TIMEOUT_MS = 10_000
/** Output buffered for a slow client before the container's output is paused, bytes. */
const HIGH_WATER = 1024 * 1024

type Release = ReleaseView & { image: string }

/** The newest release of `app` that has an image; `WHARF_CONFLICT` when there is none yet. */
export async function currentRelease(pool: pg.Pool, app: string): Promise<Release> {
  const version = await newestImageVersion(pool, app)
  const release = version !== undefined ? await getRelease(pool, app, version) : undefined
  if (!release?.image) throw new WharfError('WHARF_CONFLICT', `${app} has no release with an image yet: push first: git push wharf main`, { details: { app } })
  return release as Release
}

const statusOf = engineStatus

function messageOf(err: unknown): string {
  const e = err as { json?: { message?: string }; message?: string } | undefined
  return e?.json?.message ?? e?.message ?? String(err)
}

/**
 * Makes sure the engine has `image`: when it does not, pulls it from the platform registry
 * (`registry`, `127.0.0.1:<port>`), never from anywhere else. Throws `WHARF_NOT_FOUND` when the
 * registry does not have it, `WHARF_UNAVAILABLE` when the engine fails.
 */
export async function ensureImage(docker: ContainerEngine, image: string, registry: string, log: FastifyBaseLogger): Promise<void> {
  try {
    await docker.inspectImage(image)
    return
  } catch (err) {
    if (statusOf(err) !== 404) throw new WharfError('WHARF_UNAVAILABLE', `the Docker engine cannot inspect ${image}: ${messageOf(err)}`, { cause: err })
  }
  if (!image.startsWith(`${registry}/`)) {
    throw new WharfError('WHARF_NOT_FOUND', `the image ${image} is not in the Docker engine and not in the platform registry ${registry}`, {
      details: { image },
    })
  }
  log.info({ image }, 'pulling the release image from the registry')
  let error: string | undefined
  try {
    await docker.pullImage(image)
  } catch (err) {
    error ??= messageOf(err)
  }
  if (error !== undefined) {
    throw new WharfError('WHARF_NOT_FOUND', `the image ${image} is not in the Docker engine, and the registry cannot give it: ${error}`, { details: { image } })
  }
}

/** Removes a container, killing it first; quiet when it is gone or going already. */
async function removeContainer(docker: ContainerEngine, container: string, log: FastifyBaseLogger): Promise<void> {
  try {
    await docker.removeContainer(container, { force: true })
  } catch (err) {
    const status = statusOf(err)
    // 404: removed already (AutoRemove); 409: the engine is removing it.
    if (status !== 404 && status !== 409) log.warn({ err, container }, 'cannot remove a one-off container')
  }
}

function send(socket: WebSocket, msg: ServerMessage): void {
  if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(msg))
}

/** Sends the error and closes: 1008 for the caller's fault, 1011 for ours. */
function fail(socket: WebSocket, code: ErrorCode, message: string): void {
  send(socket, { type: 'error', code, message })
  if (socket.readyState === socket.OPEN) socket.close(code === 'WHARF_INVALID' ? 1008 : 1011, code)
}

interface RunContext {
  docker: ContainerEngine
  socket: WebSocket
  release: Release
  start: StartMessage
  req: FastifyRequest
  registry: string
  log: FastifyBaseLogger
  limits: LimitsConfig
}

/**
 * One run: pulls the image if needed, creates the container, attaches, starts it, forwards stdin
 * and output, and answers the exit code; the container is removed when this settles, whatever
 * happened. Resolves `undefined` when the client went away first.
 */
async function execute(
  ctx: RunContext,
  gone: AbortSignal,
  stdinQueue: { push(chunk: Buffer | 'eof'): void; attach(sink: Duplex): void },
  onStarted: (c: string) => void,
): Promise<number | undefined> {
  const { docker, socket, release, start, req, log } = ctx
  await ensureImage(docker, release.image, ctx.registry, log)
  if (gone.aborted) return undefined
  const { runPids: pids, runMemoryBytes: memoryBytes, runCpus: cpus } = ctx.limits
  const spec = runContainerSpec(release, start, { run: req.id, user: signedIn(req).username }, { pids, memoryBytes, cpus })
  const container = await docker.createContainer(spec)
  try {
    if (gone.aborted) return undefined
    const removeOnGone = () => void removeContainer(docker, container, log)
    gone.addEventListener('abort', removeOnGone, { once: true })
    const tty = start.tty ?? false
    const stdin = start.stdin ?? false
    const stream = await docker.attachContainer(container, { stdin })
    const ended = new Promise<void>((resolve) => {
      stream.on('end', resolve)
      stream.on('close', resolve)
      stream.on('error', (err) => {
        log.debug({ err }, 'the attach stream failed')
        resolve()
      })
    })
    let paused = false
    const forward = (which: number, data: Buffer) => {
      if (socket.readyState !== socket.OPEN) return
      socket.send(outputFrame(which, data), () => {
        if (paused && socket.bufferedAmount < HIGH_WATER / 4) {
          paused = false
          stream.resume()
        }
      })
      if (!paused && socket.bufferedAmount > HIGH_WATER) {
        paused = true
        stream.pause()
      }
    }
    const demux = demuxer((which, data) => forward(which === 2 ? STDERR : STDOUT, data))
    stream.on('data', (chunk: Buffer) => (tty ? forward(STDOUT, chunk) : demux(chunk)))
    if (stdin) stdinQueue.attach(stream)

    const { exited } = await docker.waitRemoved(container)
    exited.catch(() => {}) // awaited below; a failure after the client left is not an error
    try {
      await docker.startContainer(container)
    } catch (err) {
      // The engine refuses a command it cannot exec at start (400 on newer engines, 500 on older).
      if (statusOf(err) === 400 || /executable file not found|no such file or directory|permission denied/.test(messageOf(err))) {
        throw new WharfError('WHARF_INVALID', `cannot run ${start.command[0]} in ${release.image}: ${messageOf(err)}`, { cause: err })
      }
      throw err
    }
    onStarted(container)
    log.info({ container: container.slice(0, 12), release: release.version, command: start.command, tty, stdin }, 'run started')
    send(socket, { type: 'started', container: container.slice(0, 12), release: release.version })
    if (tty && start.cols && start.rows) await docker.resizeContainer(container, { rows: start.rows, cols: start.cols }).catch(() => {})
    const code = await exited
    // The output may still be in flight when the wait answers; its end follows the exit closely.
    await Promise.race([ended, new Promise((r) => setTimeout(r, 2000).unref())])
    return gone.aborted ? undefined : code
  } finally {
    await removeContainer(docker, container, log)
  }
}

/**
 * `wharf run`: `GET /v1/apps/:app/run` upgraded to a WebSocket runs a one-off process of the app's
 * current release (the protocol is in apps/run.ts). The auth hook and the access and release checks
 * run before the upgrade, so their refusals are plain HTTP answers.
 */
export const runRoutes: RoutePlugin = async (api, deps) => {
  const engine = (): ContainerEngine => {
    if (!deps.engine) throw new WharfError('WHARF_UNAVAILABLE', 'the controller has no Docker engine (WHARF_DOCKER_HOST is not set)')
    return deps.engine
  }
  const registry = `127.0.0.1:${deps.cfg.ports.registry}`
  const releases = new WeakMap<FastifyRequest, Release>()
  /** Runs in flight, so closing the controller removes their containers first. */
  const running = new Set<Promise<unknown>>()

  // Registered here rather than in http.ts: it only wraps routes registered after it.
  await api.register(websocket, {
    options: { maxPayload: 1024 * 1024 },
    errorHandler: (err, socket, req) => {
      req.log.debug({ err }, 'run socket error')
      socket.terminate()
    },
  })
  api.addHook('onClose', async () => {
    await Promise.allSettled([...running])
  })

  api.route({
    method: 'GET',
    url: '/apps/:app/run',
    schema: {
      summary: 'Run a one-off process of the current release (a WebSocket: GET with Upgrade; see `wharf run`).',
      params: AppParams,
    },
    preHandler: async (req) => {
      const user = signedIn(req)
      const app = (req.params as { app: string }).app
      await visibleApp(deps.pool, user, app)
      if (!req.ws) throw new WharfError('WHARF_INVALID', 'a run is a WebSocket: connect with Upgrade: websocket (wharf run does)')
      const release = await currentRelease(deps.pool, app)
      engine()
      releases.set(req, release)
    },
    // A refused upgrade (401 from the auth hook, 404, 409) answered over the raw socket: close it,
    // or it stays open and holds the server's close. (The plugin's own hook misses refusals made
    // before its onRequest hook ran.)
    onResponse: async (req, reply) => {
      if (req.headers.upgrade) reply.raw.socket?.destroy()
    },
    handler: async () => {
      throw new WharfError('WHARF_INVALID', 'a run is a WebSocket: connect with Upgrade: websocket (wharf run does)')
    },
    wsHandler: (socket, req) => {
      const release = releases.get(req)!
      const log = req.log.child({ app: release.app })
      const gone = new AbortController()
      /** waiting for the start message, running, or done (answered, refused or the client left). */
      let state: 'waiting' | 'running' | 'done' = 'waiting'
      let start: StartMessage | undefined
      let container: string | undefined
      socket.on('close', () => {
        if (state === 'running') log.info('the client left: removing the run')
        if (state !== 'done') gone.abort()
        state = 'done'
        clearTimeout(timer)
      })
      const refuse = (message: string) => {
        state = 'done'
        fail(socket, 'WHARF_INVALID', message)
      }
      const timer = setTimeout(() => state === 'waiting' && refuse(`no start message within ${START_TIMEOUT_MS / 1000} s`), START_TIMEOUT_MS)

      // Stdin frames may arrive before the container is attached: kept until then. What is held
      // (kept early, or unsent to the container) is bounded by WHARF_RUN_STDIN_MAX_KB: beyond it the
      // client's socket is paused until the container has read it.
      let sink: Duplex | undefined
      const early: (Buffer | 'eof')[] = []
      let earlyBytes = 0
      let stdinPaused = false
      const maxStdin = deps.cfg.limits.runStdinBytes
      const held = () => earlyBytes + (sink?.writableLength ?? 0)
      const resumeStdin = () => {
        if (stdinPaused && held() <= maxStdin) {
          stdinPaused = false
          socket.resume()
        }
      }
      const write = (chunk: Buffer | 'eof') => (chunk === 'eof' ? sink!.end() : sink!.write(chunk))
      const stdinQueue = {
        push: (chunk: Buffer | 'eof') => {
          if (sink) write(chunk)
          else {
            early.push(chunk)
            if (chunk !== 'eof') earlyBytes += chunk.length
          }
          if (!stdinPaused && held() > maxStdin) {
            stdinPaused = true
            socket.pause()
          }
        },
        attach: (s: Duplex) => {
          sink = s
          s.on('drain', resumeStdin)
          for (const c of early.splice(0)) write(c)
          earlyBytes = 0
          resumeStdin()
        },
      }

      // One listener from the start: frames that arrive together are handled in order.
      socket.on('message', (data: Buffer, isBinary: boolean) => {
        if (state === 'waiting') {
          clearTimeout(timer)
          if (isBinary) return refuse('the first message must be a start message: {"type":"start","command":[...]}')
          const parsed = parseStart(data.toString('utf8'))
          if (typeof parsed === 'string') return refuse(parsed)
          start = parsed
          state = 'running'
          void begin(parsed)
          return
        }
        if (state !== 'running' || !start) return
        if (isBinary) {
          if (start.stdin) stdinQueue.push(data)
          return
        }
        const msg = parseControl(data.toString('utf8'))
        if (msg?.type === 'eof' && start.stdin) stdinQueue.push('eof')
        else if (msg?.type === 'resize' && container && start.tty)
          void engine()
            .resizeContainer(container, { rows: msg.rows, cols: msg.cols })
            .catch(() => {})
      })

      async function begin(start: StartMessage): Promise<void> {
        const run = execute(
          { docker: engine(), socket, release, start, req, registry, log, limits: deps.cfg.limits },
          gone.signal,
          stdinQueue,
          (c) => (container = c),
        )
        running.add(run)
        const began = Date.now()
        try {
          const code = await run
          if (code === undefined) return
          state = 'done'
          log.info({ exitCode: code, ms: Date.now() - began }, 'run finished')
          send(socket, { type: 'exit', code })
          socket.close(1000, 'exit')
        } catch (err) {
          if (gone.signal.aborted) return void log.info({ err: messageOf(err) }, 'run ended after the client left')
          state = 'done'
          const e = isWharfError(err) ? err : new WharfError('WHARF_UNAVAILABLE', `the Docker engine cannot run the command: ${messageOf(err)}`, { cause: err })
          log[e.status >= 500 ? 'error' : 'info']({ err }, 'run failed')
          fail(socket, e.code, e.message)
        } finally {
          running.delete(run)
        }
      }
    },
  })
}
