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
    /** Resolved settings for tools that talk to a running platform (bench, CLI admin commands). */
    envFile: join(home, 'wharf.env'),
    nats: { data: join(home, 'nats'), pid: join(run, 'nats.pid'), log: join(logs, 'nats.log') },
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
      tmp: join(home, 'nginx', 'tmp'),
      pid: join(run, 'nginx.pid'),
      log: join(logs, 'nginx.log'),
    },
    registry: { dir: join(home, 'registry'), conf: join(home, 'registry', 'config.yml'), data: join(home, 'registry', 'data'), pid: join(run, 'registry.pid'), log: join(logs, 'registry.log') },
    docker: {
      data: join(home, 'docker', 'data'),
      exec: join(home, 'docker', 'exec'),
      socket: join(run, 'docker.sock'),
      pid: join(run, 'docker.pid'),
      log: join(logs, 'docker.log'),
      images: join(home, 'docker', 'images'),
    },
    services: { pid: join(run, 'wharf.pid'), log: join(logs, 'wharf.log') },
  }
}

export type Paths = ReturnType<typeof pathsFor>
