import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type Docker from 'dockerode'
import { dockerClient } from '../../core/docker.js'
import type { InfraContext, Part } from '../part.js'
import { execFileP, livePid, startDaemon, stopPidfile, tail, waitUntil } from '../proc.js'

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

async function hasImage(docker: Docker, ref: string): Promise<boolean> {
  try {
    await docker.getImage(ref).inspect()
    return true
  } catch {
    return false
  }
}

/**
 * `busybox:latest` made from Debian's busybox-static with every applet linked, so a Dockerfile
 * `FROM busybox` builds with no network.
 */
async function ensureBusybox(ctx: InfraContext, docker: Docker): Promise<void> {
  if (await hasImage(docker, 'busybox:latest')) return
  ctx.say('docker: making base image busybox:latest from busybox-static')
  const root = join(ctx.paths.docker.images, 'busybox-rootfs')
  rmSync(root, { recursive: true, force: true })
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'tmp', 'root', 'home', 'var', 'proc', 'sys', 'dev']) mkdirSync(join(root, d), { recursive: true })
  await execFileP('cp', ['/bin/busybox', join(root, 'bin/busybox')])
  const { stdout } = await execFileP('/bin/busybox', ['--list-full'])
  for (const applet of stdout.split('\n').filter(Boolean)) {
    const at = join(root, applet)
    if (!existsSync(at)) symlinkSync('/bin/busybox', at)
  }
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n')
  writeFileSync(join(root, 'etc/group'), 'root:x:0:\nnobody:x:65534:\n')
  await execFileP('chmod', ['1777', join(root, 'tmp')])
  const tarball = join(ctx.paths.docker.images, 'busybox.tar')
  await execFileP('tar', ['-C', root, '--numeric-owner', '-cf', tarball, '.'])
  const stream = await docker.importImage(tarball, { repo: 'busybox', tag: 'latest', changes: ['CMD ["sh"]'] } as object)
  await new Promise<void>((resolve, reject) => docker.modem.followProgress(stream, (err) => (err ? reject(err) : resolve())))
  rmSync(root, { recursive: true, force: true })
  rmSync(tarball, { force: true })
  if (!(await hasImage(docker, 'busybox:latest'))) throw new Error('docker: importing busybox:latest failed')
}

/**
 * A Docker engine of Wharf's own (own data-root, exec-root and socket under $WHARF_HOME) in swarm
 * mode, or the existing engine named by WHARF_DOCKER_HOST; plus the base images.
 */
export const docker: Part = {
  name: 'docker',
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
      startDaemon({
        cmd: 'dockerd',
        args: ['--data-root', paths.docker.data, '--exec-root', exec, '-H', `unix://${paths.docker.socket}`, '--pidfile', paths.docker.pid],
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
    await ensureBusybox(ctx, client)
    return result
  },
  async stop(ctx) {
    if (ctx.cfg.dockerHost) return 'not running'
    // dockerd stops its containers (10 s grace) and containerd before it exits.
    return (await stopPidfile(ctx.paths.docker.pid, { timeoutMs: 60_000 })) ? 'stopped' : 'not running'
  },
}
