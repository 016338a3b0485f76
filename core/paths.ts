/**
 * Files under `$WHARF_HOME`: where each part keeps its data, pid, socket and log, and the files more
 * than one service reads or writes (the builder writes build logs and the host key, the controller
 * serves them), so they share no code but this.
 */
import { join } from 'node:path'

/** Where each part keeps its data, pid, socket and log under `$WHARF_HOME`. */
export function pathsFor(home: string) {
  const run = join(home, 'run')
  const logs = join(home, 'logs')
  return {
    home,
    run,
    logs,
    secrets: join(home, 'secrets'),
    /** The secret the apps' log-input tokens are derived from, when `make up` generates it. */
    logInputSecret: join(home, 'secrets', 'log-input-secret'),
    /** Resolved settings for tools that talk to a running platform (bench, CLI admin commands). */
    envFile: join(home, 'wharf.env'),
    nats: {
      data: join(home, 'nats'),
      pid: join(run, 'nats.pid'),
      log: join(logs, 'nats.log'),
      conf: join(home, 'secrets', 'nats.conf'),
      password: join(home, 'secrets', 'nats-password'),
    },
    postgres: {
      data: join(home, 'postgres'),
      socketDir: join(run, 'postgres'),
      pid: join(home, 'postgres', 'postmaster.pid'),
      log: join(logs, 'postgres.log'),
      password: join(home, 'secrets', 'postgres-password'),
    },
    nginx: {
      dir: join(home, 'nginx'),
      conf: join(home, 'nginx', 'nginx.conf'),
      confd: join(home, 'nginx', 'conf.d'),
      /** The router's TLS certificates and keys (mode 700; written by the router, read by the nginx master). */
      certs: join(home, 'nginx', 'certs'),
      /** The admin server's unix socket, where the router posts change sets (root only: the master creates it). */
      admin: join(home, 'nginx', 'admin.sock'),
      tmp: join(home, 'nginx', 'tmp'),
      pid: join(run, 'nginx.pid'),
      log: join(logs, 'nginx.log'),
    },
    registry: {
      dir: join(home, 'registry'),
      conf: join(home, 'registry', 'config.yml'),
      data: join(home, 'registry', 'data'),
      /** The password infra generated for the registry's user (mode 600), unless `WHARF_REGISTRY_PASSWORD` gives one. */
      password: join(home, 'secrets', 'registry-password'),
      /** The registry's htpasswd file (bcrypt), written from the user and password on every start (mode 600). */
      htpasswd: join(home, 'secrets', 'registry.htpasswd'),
      pid: join(run, 'registry.pid'),
      log: join(logs, 'registry.log'),
    },
    docker: {
      data: join(home, 'docker', 'data'),
      exec: join(home, 'docker', 'exec'),
      socket: join(run, 'docker.sock'),
      pid: join(run, 'docker.pid'),
      log: join(logs, 'docker.log'),
      images: join(home, 'docker', 'images'),
    },
    ceph: {
      dir: join(home, 'ceph'),
      conf: join(home, 'ceph', 'ceph.conf'),
      fsid: join(home, 'ceph', 'fsid'),
      /** Written last by the first start: without it a half-made cluster is made again from nothing. */
      created: join(home, 'ceph', 'created'),
      /** The mon port the monmap was made with (the monmap is rewritten when WHARF_CEPH_MON_PORT moves). */
      monPortFile: join(home, 'ceph', 'mon-port'),
      monmap: join(home, 'ceph', 'monmap'),
      monKeyring: join(home, 'ceph', 'mon.keyring'),
      adminKeyring: join(home, 'ceph', 'client.admin.keyring'),
      mon: join(home, 'ceph', 'mon'),
      osd: join(home, 'ceph', 'osd'),
      rgw: join(home, 'ceph', 'rgw'),
      /** Admin sockets. */
      run: join(run, 'ceph'),
      monPid: join(run, 'ceph-mon.pid'),
      osdPid: join(run, 'ceph-osd.pid'),
      rgwPid: join(run, 'radosgw.pid'),
      monLog: join(logs, 'ceph-mon.log'),
      osdLog: join(logs, 'ceph-osd.log'),
      rgwLog: join(logs, 'radosgw.log'),
      /** Wharf's S3 user's keys (mode 600), made once by `radosgw-admin user create`. */
      s3Keys: join(home, 'secrets', 's3.json'),
    },
    /** redis-server for the registry's blob-descriptor cache (a cache: nothing is saved to disk). */
    redis: { dir: join(home, 'redis'), pid: join(run, 'redis.pid'), log: join(logs, 'redis.log') },
    services: { pid: join(run, 'wharf.pid'), log: join(logs, 'wharf.log') },
    /** The builder in a process of its own (a push that crashes it takes nothing else down). */
    builder: { pid: join(run, 'builder.pid'), log: join(logs, 'builder.log') },
    /**
     * The router in a process of its own (its event loop shared with no other service); `socket`:
     * where it answers `GET /healthz` (the controller's `/healthz` asks it, see `WHARF_ROUTER_HEALTH`).
     */
    router: { pid: join(run, 'router.pid'), log: join(logs, 'router.log'), socket: join(run, 'router.sock') },
    /**
     * The workers' process: the services off the command path (scheduler, publisher, logger, logspout,
     * backups, webhooks), so the controller and the projector have an event loop of their own; `socket`:
     * where it answers `GET /healthz` (the controller's `/healthz` asks it, see `WHARF_WORKERS_HEALTH_SOCKET`).
     */
    workers: { pid: join(run, 'workers.pid'), log: join(logs, 'workers.log'), socket: join(run, 'workers.sock') },
    /** The supervisor that starts again what died, and its record of restarts (`make status`). */
    supervisor: { pid: join(run, 'supervisor.pid'), log: join(logs, 'supervisor.log'), state: join(run, 'supervisor.json') },
  }
}

export type Paths = ReturnType<typeof pathsFor>

/** Where a build's full output is kept: `$WHARF_HOME/builds/<build id>.log` (read by `builds:info`). */
export function buildLogPath(home: string, build: string): string {
  return join(home, 'builds', `${build}.log`)
}

/** The builder's SSH host key (private; the public one is beside it with `.pub`). */
export function hostKeyPath(home: string): string {
  return join(home, 'builder', 'ssh_host_ed25519_key')
}
