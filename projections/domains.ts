import type pg from 'pg'
import { narrow, type EventOf } from '../domain/index.js'
import type { RecordedEvent } from '../events/index.js'
import { copyLine, copyRows } from './copy.js'
import { unhandled, type Projection, type Queryable } from './projection.js'

type DomainsEvent = EventOf<'DomainAdded' | 'DomainRemoved' | 'AppCreated' | 'AppDestroyed'>

const HANDLES = ['DomainAdded', 'DomainRemoved', 'AppCreated', 'AppDestroyed'] as const satisfies readonly DomainsEvent['type'][]

/** `domains(domain, app, created_at)`: the custom domains of live apps (a domain belongs to one app). */
export const domainsProjection: Projection = {
  name: 'domains',
  version: 1,
  handles: HANDLES,
  tables: `
    CREATE TABLE domains (
      domain     text PRIMARY KEY,
      app        text NOT NULL,
      created_at timestamptz NOT NULL
    );
    CREATE INDEX domains_app ON domains (app);
  `,
  async apply(event: RecordedEvent, tx: pg.PoolClient): Promise<void> {
    const e = narrow<DomainsEvent>(event)
    switch (e.type) {
      case 'DomainAdded':
        await tx.query(
          `INSERT INTO domains (domain, app, created_at) VALUES ($1, $2, $3)
           ON CONFLICT (domain) DO UPDATE SET app = EXCLUDED.app, created_at = EXCLUDED.created_at`,
          [e.data.domain, e.data.app, e.occurredAt],
        )
        return
      case 'DomainRemoved':
        await tx.query('DELETE FROM domains WHERE domain = $1 AND app = $2', [e.data.domain, e.data.app])
        return
      case 'AppCreated':
      case 'AppDestroyed':
        await tx.query('DELETE FROM domains WHERE app = $1', [e.data.app])
        return
      default:
        return unhandled('domains', e)
    }
  },
  /** The domains in memory (by domain, and by app for the apps created or destroyed), written with one COPY at the end (each case as in `apply`). */
  bulk() {
    const domains = new Map<string, { app: string; createdAt: string }>()
    const byApp = new Map<string, Set<string>>()
    return {
      apply(events) {
        for (const event of events) {
          const e = narrow<DomainsEvent>(event)
          switch (e.type) {
            case 'DomainAdded': {
              const old = domains.get(e.data.domain)
              if (old) byApp.get(old.app)?.delete(e.data.domain)
              domains.set(e.data.domain, { app: e.data.app, createdAt: e.occurredAt })
              let names = byApp.get(e.data.app)
              if (!names) byApp.set(e.data.app, (names = new Set()))
              names.add(e.data.domain)
              break
            }
            case 'DomainRemoved':
              if (domains.get(e.data.domain)?.app === e.data.app) {
                domains.delete(e.data.domain)
                byApp.get(e.data.app)?.delete(e.data.domain)
              }
              break
            case 'AppCreated':
            case 'AppDestroyed':
              for (const d of byApp.get(e.data.app) ?? []) domains.delete(d)
              byApp.delete(e.data.app)
              break
            default:
              return unhandled('domains', e)
          }
        }
      },
      async write(tx) {
        await copyRows(
          tx,
          'domains',
          ['domain', 'app', 'created_at'],
          Array.from(domains, ([domain, d]) => copyLine([domain, d.app, d.createdAt])),
        )
      },
    }
  },
}

/** The custom domains of an app, by name (`created`: ISO 8601). */
export async function getDomains(db: Queryable, app: string): Promise<{ domain: string; created: string }[]> {
  const { rows } = await db.query('SELECT domain, created_at FROM rm_domains.domains WHERE app = $1 ORDER BY domain', [app])
  return rows.map((r) => ({ domain: r.domain, created: (r.created_at as Date).toISOString() }))
}

/** Every custom domain with its app, in no particular order. */
export async function allDomains(db: Queryable, only?: readonly string[]): Promise<{ domain: string; app: string }[]> {
  const { rows } = only
    ? await db.query<{ domain: string; app: string }>(`SELECT domain, app FROM rm_domains.domains WHERE app = ANY($1)`, [only])
    : await db.query<{ domain: string; app: string }>(`SELECT domain, app FROM rm_domains.domains`)
  return rows
}
