import type pg from 'pg'
import type { RecordedEvent } from '../events/index.js'
import { narrow, unhandled, type Projection } from './projection.js'

type ContainersEvent =
  | { type: 'ContainerStarted'; data: { app: string; type: string; release: number; container: string; host: string; port: number } }
  | { type: 'ContainerStopped'; data: { app: string; type: string; container: string } }
  | { type: 'AppDestroyed'; data: { app: string } }

const HANDLES = ['ContainerStarted', 'ContainerStopped', 'AppDestroyed'] as const satisfies readonly ContainersEvent['type'][]

/** `containers(container, app, type, release, host, port, started_at)`: the running processes of apps. */
export const containersProjection: Projection = {
  name: 'containers',
  version: 1,
  handles: HANDLES,
  tables: `
    CREATE TABLE containers (
      container  text PRIMARY KEY,
      app        text NOT NULL,
      type       text NOT NULL,
      release    integer NOT NULL,
      host       text NOT NULL,
      port       integer NOT NULL,
      started_at timestamptz NOT NULL
    );
    CREATE INDEX containers_app ON containers (app);
  `,
  async apply(event: RecordedEvent, tx: pg.PoolClient): Promise<void> {
    const e = narrow<ContainersEvent>(event)
    switch (e.type) {
      case 'ContainerStarted':
        await tx.query(
          `INSERT INTO containers (container, app, type, release, host, port, started_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (container) DO UPDATE SET app = EXCLUDED.app, type = EXCLUDED.type, release = EXCLUDED.release,
             host = EXCLUDED.host, port = EXCLUDED.port, started_at = EXCLUDED.started_at`,
          [e.data.container, e.data.app, e.data.type, e.data.release, e.data.host, e.data.port, e.occurredAt],
        )
        return
      case 'ContainerStopped':
        await tx.query('DELETE FROM containers WHERE container = $1', [e.data.container])
        return
      case 'AppDestroyed':
        await tx.query('DELETE FROM containers WHERE app = $1', [e.data.app])
        return
      default:
        return unhandled('containers', e)
    }
  },
}
