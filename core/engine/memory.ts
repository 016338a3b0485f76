/**
 * The in-memory {@link ContainerEngine}, for unit tests. It keeps what an engine keeps (services and
 * their tasks, containers, images, a registry, the events and logs) and refuses what Docker refuses,
 * with the same {@link EngineError} reasons as the dockerode adapter: an unknown image, container or
 * service, a taken name, a stale service version.
 *
 * Nothing runs: a started container is "running" until the test ends it ({@link MemoryEngine.exit},
 * {@link MemoryEngine.stop}); what it prints is what the test writes ({@link MemoryEngine.write}).
 * Swarm converges at once: a service's tasks and their containers are there when the create or
 * update answers; a task whose image the engine cannot find is rejected, and an update whose tasks
 * are rejected is rolled back when its `FailureAction` is `rollback`.
 */
import { createHash, randomBytes } from 'node:crypto'
import { constants } from 'node:os'
import { Duplex, PassThrough, Readable } from 'node:stream'
import {
  EngineError,
  type BuildOptions,
  type ContainerEngine,
  type ContainerEvent,
  type ContainerInfo,
  type ContainerSpec,
  type ContainerSummary,
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
  type TaskTemplate,
} from './engine.js'
import { canonicalJson as canonical } from '../canonical.js'

interface MemImage {
  id: string
  labels: Record<string, string>
  exposedPorts: string[]
}

interface LogEntry {
  /** ns since the epoch. */
  ns: bigint
  stream: 1 | 2
  data: Buffer
}

interface MemContainer {
  id: string
  image: string
  imageId: string
  spec: ContainerSpec
  labels: Record<string, string>
  state: 'created' | 'running' | 'exited'
  created: number
  exitCode: number
  oomKilled: boolean
  health?: string
  ports: Record<string, number[]>
  logs: LogEntry[]
  /** What attached clients wrote to its stdin. */
  stdin: Buffer[]
  /** Open attach and followed log streams, ended when it stops. */
  readers: Set<{ push(e: LogEntry): void; end(): void }>
  removalWaiters: ((code: number) => void)[]
  task?: MemTask
}

interface MemTask extends TaskInfo {
  slot: number
  container?: string
}

/** A task as the engine API tells it: its slot, and its container once it has one. */
function taskView({ container, ...t }: MemTask): TaskInfo {
  return clone({ ...t, ...(container ? { containerId: container } : {}) })
}

interface MemService {
  id: string
  version: number
  spec: ServiceSpec
  previous?: ServiceSpec
  updateStatus?: ServiceInfo['updateStatus']
  tasks: MemTask[]
}

interface Listener {
  filter: EventFilter
  onEvent: (e: ContainerEvent) => void
  close: () => void
}

export interface MemoryEngineOptions {
  /** Images the engine has from the start: references (`busybox:latest`), with their EXPOSEd ports. */
  images?: (string | { ref: string; exposedPorts?: string[]; labels?: Record<string, string> })[]
  /** Registries (`127.0.0.1:5000`) a push reaches; a push elsewhere is refused (`unavailable`). */
  registries?: string[]
  /** First host port handed to published ports, default 30_000. */
  firstHostPort?: number
}

const hex = (n: number) => randomBytes(n).toString('hex')
const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex')
const clone = <T>(v: T): T => structuredClone(v)

/** `repo:tag` of a reference (`busybox` -> `busybox:latest`); a digest reference as it is. */
function normalize(ref: string): string {
  if (ref.includes('@')) return ref
  const slash = ref.lastIndexOf('/')
  return ref.slice(slash + 1).includes(':') ? ref : `${ref}:latest`
}

/** `127.0.0.1:5000/shop:v1` -> `127.0.0.1:5000` (the part before the first `/`, if it names a host). */
function registryOf(ref: string): string | undefined {
  const slash = ref.indexOf('/')
  if (slash < 0) return undefined
  const first = ref.slice(0, slash)
  return first.includes('.') || first.includes(':') || first === 'localhost' ? first : undefined
}

function matches(labels: Record<string, string>, filter: LabelFilter | undefined): boolean {
  return Object.entries(filter ?? {}).every(([k, v]) => labels[k] === v)
}

/** RFC 3339 with nine fraction digits, as the engine's log timestamps. */
function timestamp(ns: bigint): string {
  const ms = Number(ns / 1_000_000n)
  return `${new Date(ms).toISOString().slice(0, 19)}.${(ns % 1_000_000_000n).toString().padStart(9, '0')}Z`
}

/** `<s>.<ns>` or seconds -> ns. */
function sinceNs(since: string | number | undefined): bigint {
  if (since === undefined) return 0n
  const [s = '0', f = ''] = String(since).split('.')
  return BigInt(s) * 1_000_000_000n + BigInt(`${f}000000000`.slice(0, 9))
}

/** One frame of a multiplexed stream: stream byte, three zeros, big-endian size, the bytes. */
function frame(stream: 1 | 2, data: Buffer): Buffer {
  const h = Buffer.alloc(8)
  h[0] = stream
  h.writeUInt32BE(data.length, 4)
  return Buffer.concat([h, data])
}

/** The files of a tar archive (ustar, pax headers skipped). */
function untar(tar: Buffer): Map<string, Buffer> {
  const files = new Map<string, Buffer>()
  let off = 0
  while (off + 512 <= tar.length) {
    const header = tar.subarray(off, off + 512)
    if (header.every((b) => b === 0)) break
    const str = (a: number, b: number) => header.subarray(a, b).toString('utf8').replace(/\0.*$/s, '')
    const size = parseInt(str(124, 136).trim() || '0', 8)
    const type = str(156, 157)
    const prefix = str(345, 500)
    const name = (prefix ? `${prefix}/` : '') + str(0, 100)
    if (type === '0' || type === '') files.set(name.replace(/^\.\//, ''), Buffer.from(tar.subarray(off + 512, off + 512 + size)))
    off += 512 + Math.ceil(size / 512) * 512
  }
  return files
}

export class MemoryEngine implements ContainerEngine {
  readonly #images = new Map<string, MemImage>()
  /** `repo:tag` -> image id. */
  readonly #tags = new Map<string, string>()
  /** What the registries hold: `repo:tag` and `repo@digest` -> { image id, digest }. */
  readonly #registry = new Map<string, { id: string; digest: string }>()
  readonly #registries: Set<string>
  readonly #containers = new Map<string, MemContainer>()
  readonly #services = new Map<string, MemService>()
  readonly #events: ContainerEvent[] = []
  readonly #listeners = new Set<Listener>()
  #nextPort: number
  #lastNs = 0n

  constructor(opts: MemoryEngineOptions = {}) {
    for (const i of opts.images ?? []) {
      const o = typeof i === 'string' ? { ref: i } : i
      const id = `sha256:${sha(`image:${o.ref}`)}`
      this.#images.set(id, { id, labels: o.labels ?? {}, exposedPorts: o.exposedPorts ?? [] })
      this.#tags.set(normalize(o.ref), id)
    }
    this.#registries = new Set(opts.registries ?? [])
    this.#nextPort = opts.firstHostPort ?? 30_000
  }

  // ---- Simulation controls (what a running process or the kernel would do) ------------------------

  /** The process of container `id` exits with `code` (`oom`: the kernel killed it for memory). */
  exit(id: string, code: number, opts: { oom?: boolean } = {}): void {
    const c = this.#container(id)
    if (c.state !== 'running') return
    if (opts.oom) {
      c.oomKilled = true
      this.#emit(c, 'oom')
    }
    this.#end(c, code)
  }

  /** `docker stop`: the stop signal (SIGTERM), then the exit (code 0). */
  stop(id: string): void {
    const c = this.#container(id)
    if (c.state !== 'running') return
    this.#emit(c, 'kill', { signal: '15' })
    this.#end(c, 0)
  }

  /** Container `id` writes `text` on stdout (1) or stderr (2). */
  write(id: string, text: string, stream: 1 | 2 = 1): void {
    const c = this.#container(id)
    const e: LogEntry = { ns: this.#now(), stream, data: Buffer.from(text) }
    c.logs.push(e)
    for (const r of c.readers) r.push(e)
  }

  /** What attached clients wrote to container `id`'s stdin so far. */
  stdinOf(id: string): string {
    return Buffer.concat(this.#container(id).stdin).toString('utf8')
  }

  /** Sets the health of a container with a health check (`starting`, `healthy`, `unhealthy`). */
  setHealth(id: string, status: string): void {
    const c = this.#container(id)
    c.health = status
    this.#emit(c, `health_status: ${status}`)
  }

  /** The swarm's nodes: this one (a leading manager at 127.0.0.1), and those {@link addNode} added. */
  readonly #nodes: NodeInfo[] = [
    { id: 'memory', hostname: 'memory', role: 'manager', state: 'ready', availability: 'active', address: '127.0.0.1', labels: {}, leader: true },
  ]

  /** Another node (a worker, ready, unless said otherwise). */
  addNode(node: Pick<NodeInfo, 'id' | 'address'> & Partial<NodeInfo>): void {
    this.#nodes.push({ hostname: node.id, role: 'worker', state: 'ready', availability: 'active', labels: {}, leader: false, ...node })
  }

  /** A node's state as Swarm would mark it (`down` when its heartbeats stop). */
  setNodeState(id: string, state: string): void {
    const n = this.#nodes.find((x) => x.id === id)
    if (!n) throw new EngineError('not_found', `node ${id} not found`)
    n.state = state
  }

  /** The ids of the running containers of service `name`'s tasks. */
  containersOf(name: string): string[] {
    const s = this.#service(name)
    return s.tasks.filter((t) => t.desiredState === 'running' && t.container && this.#containers.get(t.container)?.state === 'running').map((t) => t.container!)
  }

  // ---- The port ---------------------------------------------------------------------------------

  async info(): Promise<EngineInfo> {
    return {
      version: 'memory',
      apiVersion: '1.45',
      os: process.platform,
      arch: process.arch,
      swarm: { state: 'active', nodes: 1, managers: 1, controlAvailable: true },
    }
  }

  async listNodes(): Promise<NodeInfo[]> {
    return this.#nodes.map((n) => ({ ...n, labels: { ...n.labels } }))
  }

  async listServices(labels?: LabelFilter): Promise<ServiceInfo[]> {
    return [...this.#services.values()].filter((s) => matches(s.spec.Labels ?? {}, labels)).map((s) => this.#serviceInfo(s))
  }

  async inspectService(nameOrId: string): Promise<ServiceInfo> {
    return this.#serviceInfo(this.#service(nameOrId))
  }

  async createService(spec: ServiceSpec): Promise<string> {
    if (!spec.Name) throw new EngineError('invalid', 'a service needs a name')
    if (this.#find(spec.Name))
      throw new EngineError('conflict', `rpc error: code = AlreadyExists desc = name conflicts with an existing object: service ${spec.Name} already exists`)
    const s: MemService = { id: hex(13).slice(0, 25), version: 1, spec: clone(spec), tasks: [] }
    this.#services.set(s.id, s)
    this.#converge(s)
    return s.id
  }

  async updateService(nameOrId: string, version: number, spec: ServiceSpec): Promise<void> {
    const s = this.#service(nameOrId)
    if (version !== s.version) throw new EngineError('conflict', `rpc error: code = Unknown desc = update out of sequence`)
    if (spec.Name !== s.spec.Name) throw new EngineError('invalid', 'rpc error: code = Unimplemented desc = renaming services is not supported')
    const before = canonical(s.spec.TaskTemplate ?? {})
    s.previous = s.spec
    s.spec = clone(spec)
    s.version += 10
    if (canonical(s.spec.TaskTemplate ?? {}) === before) {
      this.#converge(s)
      return
    }
    s.updateStatus = { state: 'updating', startedAt: new Date().toISOString(), message: 'update in progress' }
    const image = s.spec.TaskTemplate?.ContainerSpec?.Image ?? ''
    if (!this.#resolve(image) && s.spec.UpdateConfig?.FailureAction === 'rollback' && s.previous) {
      // The new tasks are rejected; Swarm goes back to the previous spec.
      this.#rejectTask(s, 1, `No such image: ${image}`)
      s.spec = s.previous
      s.previous = undefined
      s.version += 10
      s.updateStatus = { state: 'rollback_completed', startedAt: s.updateStatus.startedAt!, message: 'rollback completed' }
      return
    }
    this.#converge(s)
    if (s.updateStatus?.state === 'updating') s.updateStatus = { state: 'completed', startedAt: s.updateStatus.startedAt!, message: 'update completed' }
  }

  async removeService(nameOrId: string): Promise<void> {
    const s = this.#service(nameOrId)
    this.#services.delete(s.id)
    for (const t of s.tasks) {
      this.#shutdown(t)
      if (t.container) this.#destroy(this.#containers.get(t.container))
    }
  }

  async listTasks(serviceId: string): Promise<TaskInfo[]> {
    const s = this.#find(serviceId)
    return s ? s.tasks.map((t) => taskView(t)) : []
  }

  async inspectTask(id: string): Promise<TaskInfo> {
    for (const s of this.#services.values()) {
      const task = s.tasks.find((x) => x.id === id)
      if (task) return taskView(task)
    }
    throw new EngineError('not_found', `task ${id} not found`)
  }

  async listContainers(opts: { labels?: LabelFilter; all?: boolean } = {}): Promise<ContainerSummary[]> {
    return [...this.#containers.values()]
      .filter((c) => (opts.all || c.state === 'running') && matches(c.labels, opts.labels))
      .map((c) => ({ id: c.id, labels: { ...c.labels }, state: c.state, created: c.created }))
  }

  async inspectContainer(id: string): Promise<ContainerInfo> {
    const c = this.#container(id)
    return {
      id: c.id,
      image: c.image,
      labels: { ...c.labels },
      running: c.state === 'running',
      exitCode: c.exitCode,
      oomKilled: c.oomKilled,
      tty: c.spec.Tty ?? false,
      ...(c.health === undefined ? {} : { health: c.health }),
      ports: clone(c.ports),
    }
  }

  async createContainer(spec: ContainerSpec): Promise<string> {
    const imageId = this.#resolve(spec.Image)
    if (!imageId) throw new EngineError('not_found', `No such image: ${spec.Image}`)
    const ports: Record<string, number[]> = {}
    for (const [key, bindings] of Object.entries(spec.HostConfig?.PortBindings ?? {})) ports[key] = bindings.map((b) => Number(b.HostPort) || this.#nextPort++)
    // As the engine does: the image's labels (a Dockerfile's LABELs), under the container's own.
    const c = this.#newContainer(spec, imageId, { ...this.#images.get(imageId)?.labels, ...spec.Labels }, ports)
    return c.id
  }

  async attachContainer(id: string, opts: { stdin: boolean }): Promise<Duplex> {
    const c = this.#container(id)
    const tty = c.spec.Tty ?? false
    const io = new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, done) {
        if (opts.stdin) c.stdin.push(chunk)
        done()
      },
    })
    const reader = { push: (e: LogEntry) => void io.push(tty ? e.data : frame(e.stream, e.data)), end: () => void io.push(null) }
    c.readers.add(reader)
    io.on('close', () => c.readers.delete(reader))
    return io
  }

  async waitRemoved(id: string): Promise<{ exited: Promise<number> }> {
    const c = this.#container(id)
    return { exited: new Promise<number>((resolve) => c.removalWaiters.push(resolve)) }
  }

  async startContainer(id: string): Promise<void> {
    const c = this.#container(id)
    if (c.state === 'running') return
    if (c.state === 'exited' && c.spec.HostConfig?.AutoRemove) throw new EngineError('conflict', `container ${id} is marked for removal and cannot be started`)
    c.state = 'running'
    c.exitCode = 0
    this.#emit(c, 'start')
  }

  async resizeContainer(id: string, _size: { rows: number; cols: number }): Promise<void> {
    const c = this.#container(id)
    if (c.state !== 'running') throw new EngineError('conflict', `container ${id} is not running`)
  }

  async killContainer(id: string, signal: string): Promise<void> {
    const c = this.#container(id)
    if (c.state !== 'running') throw new EngineError('conflict', `container ${id} is not running`)
    const n = signalOf(signal)
    if (n === undefined) throw new EngineError('invalid', `invalid signal: ${signal}`)
    this.#emit(c, 'kill', { signal: String(n) })
    // The simulated process ends on SIGTERM and SIGINT (cleanly) and SIGKILL; it ignores the others.
    if (n === 9 || n === 15 || n === 2) {
      this.#end(c, n === 9 ? 137 : 0)
      const t = c.task
      if (t && t.desiredState !== 'running' && t.state === 'running') {
        t.state = 'shutdown'
        t.timestamp = new Date().toISOString()
      }
    }
  }

  async removeContainer(id: string, opts: { force?: boolean } = {}): Promise<void> {
    const c = this.#container(id)
    if (c.state === 'running') {
      if (!opts.force)
        throw new EngineError('conflict', `cannot remove container ${id}: container is running: stop the container before removing or force remove`)
      this.#emit(c, 'kill', { signal: '9' })
      this.#end(c, 137, false)
    }
    this.#destroy(c)
  }

  async containerLogs(id: string, opts: LogOptions): Promise<Readable> {
    const c = this.#container(id)
    const from = sinceNs(opts.since)
    const tty = c.spec.Tty ?? false
    const line = (e: LogEntry) => {
      const data = Buffer.concat([Buffer.from(`${timestamp(e.ns)} `), e.data])
      return tty ? data : frame(e.stream, data)
    }
    const past = c.logs.filter((e) => e.ns >= from).map(line)
    if (!opts.follow || c.state !== 'running') return Readable.from(past)
    const out = new PassThrough()
    for (const b of past) out.write(b)
    const reader = { push: (e: LogEntry) => out.write(line(e)), end: () => out.end() }
    c.readers.add(reader)
    out.on('close', () => c.readers.delete(reader))
    return out
  }

  async containerEvents(filter: EventFilter, onEvent: (e: ContainerEvent) => void, _onError: (err: unknown, line: string) => void): Promise<EventFeed> {
    let close!: () => void
    const ended = new Promise<void>((resolve) => (close = resolve))
    const l: Listener = { filter, onEvent, close: () => {} }
    l.close = () => {
      this.#listeners.delete(l)
      close()
    }
    if (filter.since !== undefined) for (const e of this.#events) if (e.time >= filter.since && this.#wants(filter, e)) onEvent(clone(e))
    this.#listeners.add(l)
    return { ended, close: () => l.close() }
  }

  async inspectImage(ref: string): Promise<ImageInfo> {
    const id = this.#resolve(ref, false)
    if (!id) throw new EngineError('not_found', `No such image: ${ref}`)
    return this.#imageInfo(this.#images.get(id)!)
  }

  async listImages(reference: string): Promise<ImageInfo[]> {
    const ids = new Set<string>()
    for (const [tag, id] of this.#tags) if (tag === normalize(reference) || tag.slice(0, tag.lastIndexOf(':')) === reference) ids.add(id)
    return [...ids].map((id) => this.#imageInfo(this.#images.get(id)!))
  }

  async tagImage(ref: string, repo: string, tag: string): Promise<void> {
    const id = this.#resolve(ref, false)
    if (!id) throw new EngineError('not_found', `No such image: ${ref}`)
    this.#tags.set(`${repo}:${tag}`, id)
  }

  async removeImage(ref: string, opts: { force?: boolean } = {}): Promise<void> {
    const tag = normalize(ref)
    const id = this.#tags.get(tag) ?? (this.#images.has(ref) ? ref : undefined)
    if (!id) throw new EngineError('not_found', `No such image: ${ref}`)
    const users = [...this.#containers.values()].filter((c) => c.imageId === id)
    const tags = [...this.#tags].filter(([, i]) => i === id)
    if (!opts.force && users.length > 0 && tags.length <= 1)
      throw new EngineError(
        'conflict',
        `conflict: unable to remove repository reference "${ref}" (must force) - container ${users[0]!.id.slice(0, 12)} is using its referenced image`,
      )
    if (this.#tags.has(tag)) this.#tags.delete(tag)
    else for (const [t] of tags) this.#tags.delete(t)
    if (![...this.#tags.values()].includes(id) && users.length === 0) this.#images.delete(id)
  }

  async buildImage(context: Readable, opts: BuildOptions, onLine?: OnLine): Promise<{ error?: string }> {
    const chunks: Buffer[] = []
    for await (const chunk of context) {
      if (opts.signal?.aborted) throw opts.signal.reason ?? new Error('aborted')
      chunks.push(chunk as Buffer)
    }
    if (opts.signal?.aborted) throw opts.signal.reason ?? new Error('aborted')
    const tar = Buffer.concat(chunks)
    const files = untar(tar)
    const name = opts.dockerfile ?? 'Dockerfile'
    const dockerfile = files.get(name)
    if (!dockerfile) throw new EngineError('invalid', `Cannot locate specified Dockerfile: ${name}`)
    const steps = dockerfile
      .toString('utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'))
    if (steps.length === 0) throw new EngineError('invalid', 'the Dockerfile cannot be empty')
    let base: MemImage | undefined
    const exposed: string[] = []
    for (const [i, step] of steps.entries()) {
      onLine?.(`Step ${i + 1}/${steps.length} : ${step}\n`)
      const [instruction = '', ...rest] = step.split(/\s+/)
      const arg = rest.join(' ')
      switch (instruction.toUpperCase()) {
        case 'FROM': {
          const id = this.#resolve(rest[0] ?? '', false)
          if (!id) return { error: `pull access denied for ${rest[0]}, repository does not exist or may require 'docker login'` }
          base = this.#images.get(id)
          exposed.push(...(base?.exposedPorts ?? []))
          break
        }
        case 'EXPOSE':
          for (const p of rest) exposed.push(p.includes('/') ? p : `${p}/tcp`)
          break
        case 'RUN': {
          const m = /^(?:exit|sh -c ["']?exit) ([0-9]+)/.exec(arg)
          if (m && m[1] !== '0') return { error: `The command '/bin/sh -c ${arg}' returned a non-zero code: ${m[1]}` }
          break
        }
        default:
          if (!base) return { error: `no build stage in current context` }
      }
    }
    const id = `sha256:${sha(Buffer.concat([tar, Buffer.from(canonical(opts.labels ?? {}))]))}`
    this.#images.set(id, { id, labels: { ...base?.labels, ...opts.labels }, exposedPorts: [...new Set(exposed)] })
    this.#tags.set(normalize(opts.tag), id)
    onLine?.(`Successfully built ${id.slice(7, 19)}\n`)
    onLine?.(`Successfully tagged ${opts.tag}\n`)
    return {}
  }

  async pushImage(ref: string, onLine?: OnLine): Promise<string> {
    const id = this.#resolve(ref, false)
    if (!id) throw new EngineError('not_found', `No such image: ${ref}`)
    const registry = registryOf(ref) ?? 'docker.io'
    if (!this.#registries.has(registry)) throw new EngineError('unavailable', `Get "http://${registry}/v2/": dial tcp ${registry}: connect: connection refused`)
    const tagged = normalize(ref)
    const repo = tagged.slice(0, tagged.lastIndexOf(':'))
    const digest = `sha256:${sha(`${repo}@${id}`)}`
    this.#registry.set(tagged, { id, digest })
    this.#registry.set(`${repo}@${digest}`, { id, digest })
    onLine?.(`The push refers to repository [${repo}]`)
    onLine?.(`${tagged.slice(repo.length + 1)}: digest: ${digest} size: 527`)
    return digest
  }

  async pullImage(ref: string, onLine?: OnLine): Promise<void> {
    const registry = registryOf(ref) ?? 'docker.io'
    if (!this.#registries.has(registry)) throw new EngineError('not_found', `Get "http://${registry}/v2/": dial tcp ${registry}: connect: connection refused`)
    const entry = this.#registry.get(normalize(ref))
    if (!entry) throw new EngineError('not_found', `manifest for ${ref} not found: manifest unknown: manifest unknown`)
    if (!this.#images.has(entry.id)) this.#images.set(entry.id, { id: entry.id, labels: {}, exposedPorts: [] })
    this.#tags.set(normalize(ref), entry.id)
    onLine?.(`Digest: ${entry.digest}`)
    onLine?.(`Status: Downloaded newer image for ${ref}`)
  }

  // ---- Inside -----------------------------------------------------------------------------------

  /** A monotonic engine clock, ns. */
  #now(): bigint {
    const ns = BigInt(Date.now()) * 1_000_000n
    this.#lastNs = ns > this.#lastNs ? ns : this.#lastNs + 1n
    return this.#lastNs
  }

  /**
   * The image id `ref` names: a local tag or id; with `registry`, also what a registry holds (a
   * Swarm task or `docker run` pulls it), `repo:tag@digest` included.
   */
  #resolve(ref: string, registry = true): string | undefined {
    if (this.#images.has(ref)) return ref
    const local = this.#tags.get(normalize(ref.split('@')[0]!))
    if (!registry) return local
    if (ref.includes('@')) {
      const [named, digest] = ref.split('@') as [string, string]
      const n = normalize(named)
      const repo = n.slice(0, n.lastIndexOf(':'))
      const entry = this.#registry.get(`${repo}@${digest}`)
      return entry?.id
    }
    return local ?? this.#registry.get(normalize(ref))?.id
  }

  #imageInfo(i: MemImage): ImageInfo {
    return { id: i.id, tags: [...this.#tags].filter(([, id]) => id === i.id).map(([t]) => t), labels: { ...i.labels }, exposedPorts: [...i.exposedPorts] }
  }

  #find(nameOrId: string): MemService | undefined {
    return this.#services.get(nameOrId) ?? [...this.#services.values()].find((s) => s.spec.Name === nameOrId)
  }

  #service(nameOrId: string): MemService {
    const s = this.#find(nameOrId)
    if (!s) throw new EngineError('not_found', `service ${nameOrId} not found`)
    return s
  }

  #serviceInfo(s: MemService): ServiceInfo {
    return { id: s.id, version: s.version, spec: clone(s.spec), ...(s.updateStatus ? { updateStatus: { ...s.updateStatus } } : {}) }
  }

  #container(id: string): MemContainer {
    const c = this.#containers.get(id) ?? [...this.#containers.values()].find((x) => id.length >= 12 && x.id.startsWith(id))
    if (!c) throw new EngineError('not_found', `No such container: ${id}`)
    return c
  }

  #newContainer(spec: ContainerSpec, imageId: string, labels: Record<string, string>, ports: Record<string, number[]>): MemContainer {
    const c: MemContainer = {
      id: hex(32),
      image: spec.Image,
      imageId,
      spec: clone(spec),
      labels: { ...labels },
      state: 'created',
      created: Math.floor(Date.now() / 1000),
      exitCode: 0,
      oomKilled: false,
      ports,
      logs: [],
      stdin: [],
      readers: new Set(),
      removalWaiters: [],
    }
    this.#containers.set(c.id, c)
    this.#emit(c, 'create')
    return c
  }

  #wants(filter: EventFilter, e: ContainerEvent): boolean {
    return matches(e.attributes, filter.labels) && (!filter.actions || filter.actions.includes(e.action))
  }

  #emit(c: MemContainer, action: string, extra: Record<string, string> = {}): void {
    const ns = this.#now()
    const e: ContainerEvent = {
      action,
      id: c.id,
      time: Number(ns / 1_000_000_000n),
      timeNano: Number(ns),
      attributes: { ...c.labels, image: c.image, ...extra },
    }
    this.#events.push(e)
    if (this.#events.length > 10_000) this.#events.shift()
    for (const l of [...this.#listeners]) if (this.#wants(l.filter, e)) l.onEvent(clone(e))
  }

  /** The process ended with `code`: die, its task's end, its readers' end, and AutoRemove. */
  #end(c: MemContainer, code: number, autoRemove = true): void {
    c.state = 'exited'
    c.exitCode = code
    this.#emit(c, 'die', { exitCode: String(code) })
    for (const r of c.readers) r.end()
    c.readers.clear()
    const t = c.task
    if (t && t.desiredState === 'running') {
      t.state = code === 0 ? 'complete' : 'failed'
      t.timestamp = new Date().toISOString()
      t.desiredState = 'shutdown'
      if (code !== 0) t.err = `task: non-zero exit (${code})`
      const s = this.#find(t.serviceId)
      const restart = s?.spec.TaskTemplate?.RestartPolicy?.Condition ?? 'any'
      if (s && (restart === 'any' || (restart === 'on-failure' && code !== 0))) this.#startTask(s, t.slot)
    }
    if (autoRemove && c.spec.HostConfig?.AutoRemove) this.#destroy(c)
  }

  #destroy(c: MemContainer | undefined): void {
    if (!c || !this.#containers.has(c.id)) return
    this.#containers.delete(c.id)
    this.#emit(c, 'destroy')
    for (const w of c.removalWaiters.splice(0)) w(c.exitCode)
  }

  /**
   * Stops a task (its container gets the stop signal and exits 0). A stop signal other than SIGTERM
   * in the spec (a drain) is sent and the container runs on until it is killed (`killContainer`) or
   * its stop grace period ends (then SIGKILL), as the engine does.
   */
  #shutdown(t: MemTask): void {
    if (t.desiredState !== 'running') return
    t.desiredState = 'shutdown'
    const c = t.container ? this.#containers.get(t.container) : undefined
    const cs = t.spec.ContainerSpec
    const signal = signalOf(cs?.StopSignal)
    if (c?.state === 'running' && signal !== undefined && signal !== 15) {
      this.#emit(c, 'kill', { signal: String(signal) })
      const timer = setTimeout(() => void this.killContainer(c.id, 'SIGKILL').catch(() => {}), (cs?.StopGracePeriod ?? 10e9) / 1e6)
      timer.unref()
      return
    }
    if (c?.state === 'running') {
      this.#emit(c, 'kill', { signal: '15' })
      c.state = 'exited'
      this.#emit(c, 'die', { exitCode: '0' })
      for (const r of c.readers) r.end()
      c.readers.clear()
    }
    t.state = 'shutdown'
    t.timestamp = new Date().toISOString()
  }

  #rejectTask(s: MemService, slot: number, err: string): void {
    const now = new Date().toISOString()
    s.tasks.push({
      id: hex(13).slice(0, 25),
      serviceId: s.id,
      slot,
      desiredState: 'shutdown',
      state: 'rejected',
      timestamp: now,
      err,
      spec: clone(s.spec.TaskTemplate ?? {}),
    })
  }

  /** A new task in `slot` of the service's current spec, with its container running (or rejected). */
  #startTask(s: MemService, slot: number): void {
    const template: TaskTemplate = clone(s.spec.TaskTemplate ?? {})
    const cs = template.ContainerSpec
    const imageId = this.#resolve(cs?.Image ?? '')
    if (!cs || !imageId) {
      this.#rejectTask(s, slot, `No such image: ${cs?.Image ?? ''}`)
      return
    }
    const id = hex(13).slice(0, 25)
    const ports: Record<string, number[]> = {}
    for (const p of s.spec.EndpointSpec?.Ports ?? [])
      if (p.PublishMode === 'host') ports[`${p.TargetPort}/${p.Protocol ?? 'tcp'}`] = [p.PublishedPort || this.#nextPort++]
    const labels = {
      ...this.#images.get(imageId)?.labels,
      ...cs.Labels,
      'com.docker.swarm.service.id': s.id,
      'com.docker.swarm.service.name': s.spec.Name,
      'com.docker.swarm.task.id': id,
      'com.docker.swarm.task.name': `${s.spec.Name}.${slot}.${id}`,
    }
    const c = this.#newContainer(
      { Image: cs.Image, ...(cs.Command ? { Cmd: cs.Command } : {}), ...(cs.Env ? { Env: cs.Env } : {}), Labels: labels },
      imageId,
      labels,
      ports,
    )
    const task: MemTask = {
      id,
      serviceId: s.id,
      slot,
      desiredState: 'running',
      state: 'running',
      timestamp: new Date().toISOString(),
      spec: template,
      container: c.id,
    }
    c.task = task
    if (cs.Healthcheck && cs.Healthcheck.Test[0] !== 'NONE') c.health = 'healthy'
    s.tasks.push(task)
    c.state = 'running'
    this.#emit(c, 'start')
  }

  /** Makes the service's running tasks its replicas of its current spec (older tasks are replaced, extra slots stopped). */
  #converge(s: MemService): void {
    const replicas = s.spec.Mode?.Replicated?.Replicas ?? 1
    const want = canonical(s.spec.TaskTemplate ?? {})
    for (const t of s.tasks) {
      if (t.desiredState !== 'running') continue
      if (t.slot > replicas || canonical(t.spec) !== want) this.#shutdown(t)
    }
    for (let slot = 1; slot <= replicas; slot++) {
      if (!s.tasks.some((t) => t.slot === slot && t.desiredState === 'running')) this.#startTask(s, slot)
    }
  }
}

/** A signal as a number (`15`, `SIGTERM`, `TERM`); undefined when unset or unknown. */
function signalOf(signal: string | undefined): number | undefined {
  if (!signal) return undefined
  if (/^[0-9]+$/.test(signal)) return Number(signal)
  const up = signal.toUpperCase()
  return constants.signals[(up.startsWith('SIG') ? up : `SIG${up}`) as keyof typeof constants.signals]
}
