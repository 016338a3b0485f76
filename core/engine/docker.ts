/**
 * The {@link ContainerEngine} on a real Docker engine (a Swarm manager), through dockerode: the only
 * module outside infra/ and a few tests that speaks dockerode.
 */
import { Readable, type Duplex } from 'node:stream'
import Docker from 'dockerode'
import type { RegistryLogin } from '../config.js'
import {
  EngineError,
  engineStatus,
  type BuildOptions,
  type ContainerEngine,
  type ContainerEvent,
  type ContainerInfo,
  type ContainerSpec,
  type ContainerSummary,
  type EngineErrorReason,
  type EngineInfo,
  type EventFeed,
  type EventFilter,
  type ImageInfo,
  type LabelFilter,
  type LogOptions,
  type NodeInfo,
  type OnLine,
  type ServiceInfo,
  type ServiceSpec,
  type TaskInfo,
} from './engine.js'

/**
 * A dockerode client for `unix:///path/docker.sock` or `tcp://127.0.0.1:port` (plain, loopback only).
 */
export function dockerClient(host: string): Docker {
  if (host.startsWith('unix://')) return new Docker({ socketPath: host.slice('unix://'.length) })
  const m = /^tcp:\/\/(127\.0\.0\.1|localhost):(\d+)$/.exec(host)
  if (m) return new Docker({ host: '127.0.0.1', port: Number(m[2]), protocol: 'http' })
  throw new Error(`unsupported Docker host ${JSON.stringify(host)}: use unix:///path/to/docker.sock or tcp://127.0.0.1:PORT`)
}

/**
 * Reads a stream of newline-separated JSON (the engine's events) until it ends, handing each object
 * to `onObject`; a line that is not JSON, or that `onObject` throws on, goes to `onBadLine`.
 * Resolves when the stream ends, closes or fails.
 */
export function readJsonLines(stream: NodeJS.ReadableStream, onObject: (o: unknown) => void, onBadLine: (err: unknown, line: string) => void): Promise<void> {
  return new Promise<void>((resolve) => {
    let buf = ''
    stream.on('data', (chunk: Buffer | string) => {
      buf += chunk.toString()
      let nl
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim()
        buf = buf.slice(nl + 1)
        if (!line) continue
        try {
          onObject(JSON.parse(line))
        } catch (err) {
          onBadLine(err, line)
        }
      }
    })
    stream.on('end', () => resolve())
    stream.on('close', () => resolve())
    stream.on('error', (err: Error) => {
      onBadLine(err, '')
      resolve()
    })
  })
}

/** The engine's own message of a dockerode error. */
function messageOf(err: unknown): string {
  const e = err as { json?: { message?: string }; message?: string } | undefined
  return e?.json?.message ?? e?.message ?? String(err)
}

function reasonOf(status: number): EngineErrorReason {
  if (status === 404) return 'not_found'
  if (status === 409) return 'conflict'
  if (status >= 400 && status < 500) return 'invalid'
  return 'unavailable'
}

/** A dockerode HTTP error as an {@link EngineError} (same status); other failures (no engine) as they are. */
function wrap(err: unknown): unknown {
  const status = engineStatus(err)
  if (status === undefined || err instanceof EngineError) return err
  return new EngineError(reasonOf(status), messageOf(err), { cause: err, statusCode: status })
}

async function call<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    throw wrap(err)
  }
}

const labelList = (labels: LabelFilter | undefined) => Object.entries(labels ?? {}).map(([k, v]) => `${k}=${v}`)

/** One object of the engine's JSON progress stream (push, pull, build). */
interface Progress {
  status?: string
  id?: string
  stream?: string
  progressDetail?: { current?: number; total?: number }
  error?: string
  errorDetail?: { message?: string }
  aux?: { Digest?: string; Tag?: string; Size?: number }
}

/** The longest JSON line of a progress stream that is read, bytes (the engine sends a build's output in chunks of at most 32 KiB). */
const MAX_PROGRESS_LINE = 1 << 20

/** Statuses that repeat once per layer and say nothing a person needs. */
const QUIET = new Set(['Preparing', 'Waiting'])

/** A line worth showing for one progress object, or undefined for byte ticks and chatter. */
function lineOf(p: Progress): string | undefined {
  if (!p.status || QUIET.has(p.status)) return undefined
  if (p.progressDetail && p.progressDetail.current !== undefined) return undefined
  return p.id ? `${p.id}: ${p.status}` : p.status
}

/** The fields of a Swarm task this adapter reads (dockerode's type has none of them). */
interface SwarmTask {
  ID: string
  ServiceID?: string
  NodeID?: string
  Slot?: number
  DesiredState?: string
  Spec?: TaskInfo['spec']
  Status?: { State?: string; Timestamp?: string; Err?: string; Message?: string; ContainerStatus?: { ContainerID?: string } }
}

function taskOf(t: SwarmTask, serviceId = ''): TaskInfo {
  return {
    id: t.ID,
    serviceId: t.ServiceID ?? serviceId,
    desiredState: t.DesiredState ?? '',
    state: t.Status?.State ?? '',
    timestamp: t.Status?.Timestamp ?? '',
    ...(t.Status?.Err ? { err: t.Status.Err } : {}),
    ...(t.Status?.Message ? { message: t.Status.Message } : {}),
    spec: t.Spec ?? {},
    ...(t.Slot ? { slot: t.Slot } : {}),
    ...(t.NodeID ? { nodeId: t.NodeID } : {}),
    ...(t.Status?.ContainerStatus?.ContainerID ? { containerId: t.Status.ContainerStatus.ContainerID } : {}),
  }
}

function serviceOf(s: Docker.Service): ServiceInfo {
  const update = (s as { UpdateStatus?: { State?: string; Message?: string; StartedAt?: string } }).UpdateStatus
  return {
    id: s.ID,
    version: s.Version?.Index ?? 0,
    spec: (s.Spec ?? { Name: '' }) as ServiceSpec,
    ...((s as { PreviousSpec?: unknown }).PreviousSpec ? { previousSpec: (s as { PreviousSpec?: unknown }).PreviousSpec as ServiceSpec } : {}),
    ...(update
      ? {
          updateStatus: {
            state: update.State ?? '',
            ...(update.Message ? { message: update.Message } : {}),
            ...(update.StartedAt ? { startedAt: update.StartedAt } : {}),
          },
        }
      : {}),
  }
}

/** The engine behind `docker` (see {@link dockerClient}). */
export class DockerEngine implements ContainerEngine {
  readonly docker: Docker
  readonly #login: RegistryLogin | undefined

  /**
   * `login`: the platform registry's credentials, sent (as X-Registry-Auth) with pushes and pulls of
   * images in that registry and with every service create and update, so that each node of the swarm
   * can pull the service's image; never to another registry.
   */
  constructor(docker: Docker, login?: RegistryLogin) {
    this.docker = docker
    this.#login = login
  }

  /** The engine at `host` (`unix://...` or `tcp://127.0.0.1:port`); `login` as in the constructor. */
  static at(host: string, login?: RegistryLogin): DockerEngine {
    return new DockerEngine(dockerClient(host), login)
  }

  /**
   * The engine's authconfig for `ref`: the platform registry's credentials when `ref` is in it, else
   * empty (the engine wants an X-Registry-Auth header even for a registry without auth).
   */
  #authFor(ref: string): object {
    const l = this.#login
    if (!l) return {}
    const slash = ref.indexOf('/')
    return slash > 0 && ref.slice(0, slash).toLowerCase() === l.serveraddress ? { ...l } : {}
  }

  /** A service's authconfig: the credentials of the registry its image is in, when it is the platform's. */
  #serviceAuth(spec: ServiceSpec): object | undefined {
    const image = (spec as { TaskTemplate?: { ContainerSpec?: { Image?: string } } }).TaskTemplate?.ContainerSpec?.Image
    const auth = image ? this.#authFor(image) : {}
    return 'username' in auth ? auth : undefined
  }

  async info(): Promise<EngineInfo> {
    const [v, i] = await Promise.all([
      call(() => this.docker.version() as Promise<{ Version?: string; ApiVersion?: string; Os?: string; Arch?: string }>),
      call(
        () =>
          this.docker.info() as Promise<{
            Swarm?: { LocalNodeState?: string; NodeAddr?: string; NodeID?: string; Nodes?: number; Managers?: number; ControlAvailable?: boolean }
          }>,
      ),
    ])
    const s = i.Swarm
    return {
      version: v.Version,
      apiVersion: v.ApiVersion,
      os: v.Os,
      arch: v.Arch,
      ...(s
        ? {
            swarm: {
              state: s.LocalNodeState,
              nodeAddr: s.NodeAddr,
              nodeId: s.NodeID,
              nodes: s.Nodes,
              managers: s.Managers,
              controlAvailable: s.ControlAvailable,
            },
          }
        : {}),
    }
  }

  async listNodes(): Promise<NodeInfo[]> {
    const nodes = (await call(() => this.docker.listNodes())) as {
      ID: string
      Description?: { Hostname?: string; Engine?: { EngineVersion?: string } }
      Spec?: { Role?: string; Availability?: string; Labels?: Record<string, string> }
      Status?: { State?: string; Addr?: string }
      ManagerStatus?: { Leader?: boolean; Addr?: string }
    }[]
    return nodes.map((n) => ({
      id: n.ID,
      hostname: n.Description?.Hostname ?? '',
      role: n.Spec?.Role === 'manager' ? 'manager' : 'worker',
      state: n.Status?.State ?? 'unknown',
      availability: n.Spec?.Availability ?? 'active',
      // A manager's Status.Addr can be 0.0.0.0 (it listens on every address): its advertised one is in ManagerStatus.
      address: n.Status?.Addr && n.Status.Addr !== '0.0.0.0' ? n.Status.Addr : (n.ManagerStatus?.Addr?.replace(/:\d+$/, '') ?? ''),
      labels: n.Spec?.Labels ?? {},
      leader: n.ManagerStatus?.Leader === true,
      ...(n.Description?.Engine?.EngineVersion ? { engineVersion: n.Description.Engine.EngineVersion } : {}),
    }))
  }

  async listServices(labels?: LabelFilter): Promise<ServiceInfo[]> {
    const list = await call(() => this.docker.listServices(labels ? { filters: { label: labelList(labels) } } : {}))
    return list.map(serviceOf)
  }

  async inspectService(nameOrId: string): Promise<ServiceInfo> {
    return serviceOf((await call(() => this.docker.getService(nameOrId).inspect())) as Docker.Service)
  }

  async createService(spec: ServiceSpec): Promise<string> {
    const auth = this.#serviceAuth(spec)
    const res = (await call(() =>
      auth
        ? this.docker.createService(auth as Docker.AuthConfig, spec as Docker.CreateServiceOptions)
        : this.docker.createService(spec as Docker.CreateServiceOptions),
    )) as { id?: string; ID?: string }
    return res.id ?? res.ID ?? ''
  }

  async updateService(nameOrId: string, version: number, spec: ServiceSpec): Promise<void> {
    try {
      const auth = this.#serviceAuth(spec)
      const service = this.docker.getService(nameOrId)
      await (auth ? service.update(auth as never, { version, ...spec } as never) : service.update({ version, ...spec } as never))
    } catch (err) {
      // Swarm answers a stale version with "update out of sequence" (500) or 409.
      if (/out of sequence/i.test(messageOf(err))) throw new EngineError('conflict', messageOf(err), { cause: err })
      throw wrap(err)
    }
  }

  async removeService(nameOrId: string): Promise<void> {
    await call(() => this.docker.getService(nameOrId).remove())
  }

  async listTasks(serviceId: string): Promise<TaskInfo[]> {
    const tasks = (await call(() => this.docker.listTasks({ filters: { service: [serviceId] } }))) as SwarmTask[]
    return tasks.map((t) => taskOf(t, serviceId))
  }

  async inspectTask(id: string): Promise<TaskInfo> {
    return taskOf((await call(() => this.docker.getTask(id).inspect())) as SwarmTask)
  }

  async listContainers(opts: { labels?: LabelFilter; all?: boolean } = {}): Promise<ContainerSummary[]> {
    const filters: Record<string, string[]> = { label: labelList(opts.labels) }
    if (!opts.all) filters.status = ['running']
    const list = await call(() => this.docker.listContainers({ all: opts.all ?? false, filters }))
    return list.map((c) => ({ id: c.Id, labels: c.Labels ?? {}, state: c.State, created: c.Created }))
  }

  async inspectContainer(id: string): Promise<ContainerInfo> {
    const info = await call(() => this.docker.getContainer(id).inspect())
    const hc = info.Config.Healthcheck?.Test
    const hasHealth = !!hc?.length && hc[0] !== 'NONE'
    const ports: Record<string, number[]> = {}
    for (const [key, bindings] of Object.entries(info.NetworkSettings?.Ports ?? {})) {
      ports[key] = (bindings ?? []).map((b) => Number(b.HostPort)).filter((p) => p > 0)
    }
    const stopSignal = (info.Config as { StopSignal?: string }).StopSignal
    return {
      id: info.Id,
      image: info.Config.Image,
      labels: info.Config.Labels ?? {},
      running: info.State.Running,
      exitCode: info.State.ExitCode,
      oomKilled: info.State.OOMKilled,
      tty: info.Config.Tty,
      ...(stopSignal ? { stopSignal } : {}),
      ...(hasHealth && info.State.Health?.Status ? { health: info.State.Health.Status } : {}),
      ports,
    }
  }

  async createContainer(spec: ContainerSpec): Promise<string> {
    return (await call(() => this.docker.createContainer(spec as Docker.ContainerCreateOptions))).id
  }

  async attachContainer(id: string, opts: { stdin: boolean }): Promise<Duplex> {
    return (await call(() =>
      this.docker.getContainer(id).attach({ stream: true, stdin: opts.stdin, stdout: true, stderr: true, hijack: opts.stdin }),
    )) as Duplex
  }

  waitRemoved(id: string): Promise<{ exited: Promise<number> }> {
    return new Promise((resolve, reject) =>
      this.docker.modem.dial(
        {
          path: `/containers/${id}/wait?`,
          method: 'POST',
          isStream: true,
          statusCodes: { 200: true, 400: 'bad parameter', 404: 'no such container', 500: 'server error' },
          options: { condition: 'removed' },
        },
        (err, result) => {
          if (err) return reject(wrap(err))
          const res = result as NodeJS.ReadableStream
          const exited = new Promise<number>((done, fail) => {
            const chunks: Buffer[] = []
            res.on('data', (c: Buffer) => chunks.push(c))
            res.on('error', fail)
            res.on('end', () => {
              try {
                const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { StatusCode?: number; Error?: { Message?: string } | null }
                if (body.Error?.Message) return fail(new Error(body.Error.Message))
                done(body.StatusCode ?? -1)
              } catch (e) {
                fail(e as Error)
              }
            })
          })
          resolve({ exited })
        },
      ),
    )
  }

  async startContainer(id: string): Promise<void> {
    await call(() => this.docker.getContainer(id).start())
  }

  async resizeContainer(id: string, size: { rows: number; cols: number }): Promise<void> {
    await call(() => this.docker.getContainer(id).resize({ h: size.rows, w: size.cols }))
  }

  async killContainer(id: string, signal: string): Promise<void> {
    await call(() => this.docker.getContainer(id).kill({ signal }))
  }

  async removeContainer(id: string, opts: { force?: boolean } = {}): Promise<void> {
    await call(() => this.docker.getContainer(id).remove({ force: opts.force ?? false }))
  }

  async containerLogs(id: string, opts: LogOptions): Promise<Readable> {
    const c = this.docker.getContainer(id)
    const base = { stdout: true, stderr: true, timestamps: true, since: (opts.since ?? 0) as number }
    if (opts.follow) return (await call(() => c.logs({ ...base, follow: true }))) as unknown as Readable
    return Readable.from([await call(() => c.logs({ ...base, follow: false }))])
  }

  async containerEvents(filter: EventFilter, onEvent: (e: ContainerEvent) => void, onError: (err: unknown, line: string) => void): Promise<EventFeed> {
    const stop = new AbortController()
    const stream = (await call(() =>
      this.docker.getEvents({
        ...(filter.since === undefined ? {} : { since: filter.since }),
        filters: { type: ['container'], ...(filter.actions ? { event: filter.actions } : {}), label: labelList(filter.labels) },
        abortSignal: stop.signal,
      } as object),
    )) as NodeJS.ReadableStream & { destroy?: () => void }
    const ended = readJsonLines(
      stream,
      (o) => {
        const ev = o as {
          Type?: string
          Action?: string
          id?: string
          time?: number
          timeNano?: number
          Actor?: { ID?: string; Attributes?: Record<string, string> }
        }
        const id = ev.id ?? ev.Actor?.ID
        if (ev.Type !== 'container' || !id || !ev.Action) return
        onEvent({ action: ev.Action, id, time: ev.time ?? 0, ...(ev.timeNano ? { timeNano: ev.timeNano } : {}), attributes: ev.Actor?.Attributes ?? {} })
      },
      onError,
    )
    return {
      ended,
      close: () => {
        stop.abort()
        stream.destroy?.()
      },
    }
  }

  async inspectImage(ref: string): Promise<ImageInfo> {
    const info = await call(() => this.docker.getImage(ref).inspect())
    return { id: info.Id, tags: info.RepoTags ?? [], labels: info.Config?.Labels ?? {}, exposedPorts: Object.keys(info.Config?.ExposedPorts ?? {}) }
  }

  async listImages(reference: string): Promise<ImageInfo[]> {
    const list = await call(() => this.docker.listImages({ filters: { reference: [reference] } }))
    return list.map((i) => ({ id: i.Id, tags: i.RepoTags ?? [], labels: i.Labels ?? {}, exposedPorts: [] }))
  }

  async tagImage(ref: string, repo: string, tag: string): Promise<void> {
    await call(() => this.docker.getImage(ref).tag({ repo, tag }))
  }

  async removeImage(ref: string, opts: { force?: boolean } = {}): Promise<void> {
    await call(() => this.docker.getImage(ref).remove({ force: opts.force ?? false }))
  }

  /**
   * Follows a progress stream to its end, handing each object to `onProgress` (a promise it answers
   * pauses the stream until it settles), and answers the first error the engine put in it and the
   * digest a push reported. Keeps no object (docker-modem's `followProgress` keeps them all: a build
   * printing 300 MB would hold 300 MB), and a JSON line longer than {@link MAX_PROGRESS_LINE} is skipped.
   */
  #follow(
    stream: NodeJS.ReadableStream,
    onProgress: (p: Progress) => void | Promise<void>,
  ): Promise<{ digest: string | undefined; error: string | undefined }> {
    let error: string | undefined
    let digest: string | undefined
    return new Promise((resolve, reject) => {
      let parts: Buffer[] = []
      let size = 0
      let skipping = false
      let chain: Promise<void> = Promise.resolve()
      let finished = false
      const finish = (err?: Error) => {
        if (finished) return
        finished = true
        chain.then(() => (err ? reject(err) : resolve({ digest, error })), reject)
      }
      const handle = (line: string): void | Promise<void> => {
        const text = line.trim()
        if (!text) return
        let p: Progress
        try {
          p = JSON.parse(text) as Progress
        } catch {
          return
        }
        if (p.errorDetail || p.error) {
          error ??= p.errorDetail?.message ?? p.error
          return
        }
        digest ??= p.aux?.Digest ?? /digest: (sha256:[0-9a-f]{64})/.exec(p.status ?? '')?.[1]
        return onProgress(p)
      }
      stream.on('data', (chunk: Buffer | string) => {
        let buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
        let nl: number
        while ((nl = buf.indexOf(0x0a)) >= 0) {
          const head = buf.subarray(0, nl)
          buf = buf.subarray(nl + 1)
          const line = skipping ? undefined : Buffer.concat([...parts, head]).toString('utf8')
          parts = []
          size = 0
          skipping = false
          if (line === undefined) continue
          const wait = handle(line)
          if (wait) {
            // Backpressure: no more data until the consumer has taken this line.
            stream.pause()
            chain = chain
              .then(() => wait)
              .then(() => {
                if (!finished) stream.resume()
              })
          }
        }
        if (skipping || buf.length === 0) return
        size += buf.length
        if (size > MAX_PROGRESS_LINE) {
          parts = []
          size = 0
          skipping = true
        } else parts.push(Buffer.from(buf))
      })
      stream.on('error', (err: Error) => finish(err))
      stream.on('end', () => {
        if (!skipping && size > 0) handle(Buffer.concat(parts).toString('utf8'))
        finish()
      })
      stream.on('close', () => finish())
    })
  }

  async buildImage(context: Readable, opts: BuildOptions, onLine?: OnLine): Promise<{ error?: string }> {
    const o: Record<string, unknown> = { t: opts.tag, rm: true, forcerm: true, labels: opts.labels ?? {} }
    if (opts.buildArgs) o.buildargs = opts.buildArgs
    if (opts.dockerfile) o.dockerfile = opts.dockerfile
    if (opts.signal) o.abortSignal = opts.signal
    // A `FROM` in the platform registry (the builder lets through only images of apps the pusher may use).
    if (this.#login) o.registryconfig = { [this.#login.serveraddress]: { username: this.#login.username, password: this.#login.password } }
    const stream = await call(() => this.docker.buildImage(context, o))
    const { error } = await this.#follow(stream, (p) => (p.stream ? onLine?.(p.stream) : undefined))
    return error === undefined ? {} : { error }
  }

  async pushImage(ref: string, onLine?: OnLine): Promise<string> {
    // Engines report a missing image inside the push stream, as if the registry had refused it.
    await this.inspectImage(ref)
    let stream: NodeJS.ReadableStream
    try {
      stream = (await this.docker.getImage(ref).push({ authconfig: this.#authFor(ref) } as object)) as NodeJS.ReadableStream
    } catch (err) {
      const e = wrap(err)
      throw e instanceof EngineError && e.reason === 'not_found' ? e : new EngineError('unavailable', messageOf(err), { cause: err })
    }
    let result: { digest: string | undefined; error: string | undefined }
    try {
      result = await this.#followLines(stream, onLine)
    } catch (err) {
      throw new EngineError('unavailable', messageOf(err), { cause: err })
    }
    if (result.error !== undefined) throw new EngineError('unavailable', result.error)
    // Engines that send no `aux` still print `<tag>: digest: sha256:... size: N` (both are read).
    if (!result.digest) throw new EngineError('unavailable', 'the push reported no digest')
    return result.digest
  }

  async pullImage(ref: string, onLine?: OnLine): Promise<void> {
    let error: string | undefined
    try {
      const stream = (await this.docker.pull(ref, { authconfig: this.#authFor(ref) as Docker.AuthConfig })) as NodeJS.ReadableStream
      error = (await this.#followLines(stream, onLine)).error
    } catch (err) {
      error = messageOf(err)
    }
    if (error !== undefined) throw new EngineError('not_found', error)
  }

  /** A progress stream's readable lines to `onLine`. */
  #followLines(stream: NodeJS.ReadableStream, onLine?: OnLine): Promise<{ digest: string | undefined; error: string | undefined }> {
    return this.#follow(stream, (p) => {
      const line = lineOf(p)
      return line === undefined ? undefined : onLine?.(line)
    })
  }
}
