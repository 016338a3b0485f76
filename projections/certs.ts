import type pg from 'pg'
import { narrow, type EventOf } from '../domain/index.js'
import type { RecordedEvent } from '../events/index.js'
import { unhandled, type Projection, type Queryable } from './projection.js'

type CertsEvent = EventOf<'CertAdded' | 'CertAttached' | 'CertDetached' | 'CertRemoved' | 'DomainRemoved' | 'AppCreated' | 'AppDestroyed'>

const HANDLES = [
  'CertAdded',
  'CertAttached',
  'CertDetached',
  'CertRemoved',
  'DomainRemoved',
  'AppCreated',
  'AppDestroyed',
] as const satisfies readonly CertsEvent['type'][]

/**
 * `certs(app, name, common_name, sans, not_before, not_after, fingerprint, certificate, key, created_at)`
 * and `attachments(domain, app, name)`: the TLS certificates of live apps and the domains each serves.
 * The key is here for the router only: API answers never include it.
 */
export const certsProjection: Projection = {
  name: 'certs',
  version: 1,
  handles: HANDLES,
  tables: `
    CREATE TABLE certs (
      app         text NOT NULL,
      name        text NOT NULL,
      common_name text NOT NULL,
      sans        text[] NOT NULL,
      not_before  timestamptz NOT NULL,
      not_after   timestamptz NOT NULL,
      fingerprint text NOT NULL,
      certificate text NOT NULL,
      key         text NOT NULL,
      created_at  timestamptz NOT NULL,
      PRIMARY KEY (app, name)
    );
    CREATE TABLE attachments (
      domain text PRIMARY KEY,
      app    text NOT NULL,
      name   text NOT NULL,
      FOREIGN KEY (app, name) REFERENCES certs (app, name) ON DELETE CASCADE
    );
    CREATE INDEX attachments_cert ON attachments (app, name);
  `,
  async apply(event: RecordedEvent, tx: pg.PoolClient): Promise<void> {
    const e = narrow<CertsEvent>(event)
    switch (e.type) {
      case 'CertAdded': {
        const d = e.data
        await tx.query(
          `INSERT INTO certs (app, name, common_name, sans, not_before, not_after, fingerprint, certificate, key, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
           ON CONFLICT (app, name) DO UPDATE SET common_name = EXCLUDED.common_name, sans = EXCLUDED.sans, not_before = EXCLUDED.not_before,
             not_after = EXCLUDED.not_after, fingerprint = EXCLUDED.fingerprint, certificate = EXCLUDED.certificate, key = EXCLUDED.key, created_at = EXCLUDED.created_at`,
          [d.app, d.name, d.commonName, d.sans, d.notBefore, d.notAfter, d.fingerprint, d.certificate, d.privateKey, e.occurredAt],
        )
        return
      }
      case 'CertAttached':
        await tx.query(
          `INSERT INTO attachments (domain, app, name) VALUES ($1, $2, $3)
           ON CONFLICT (domain) DO UPDATE SET app = EXCLUDED.app, name = EXCLUDED.name`,
          [e.data.domain, e.data.app, e.data.name],
        )
        return
      case 'CertDetached':
        await tx.query('DELETE FROM attachments WHERE domain = $1 AND app = $2 AND name = $3', [e.data.domain, e.data.app, e.data.name])
        return
      case 'CertRemoved':
        // Its attachments go with it (ON DELETE CASCADE).
        await tx.query('DELETE FROM certs WHERE app = $1 AND name = $2', [e.data.app, e.data.name])
        return
      case 'DomainRemoved':
        await tx.query('DELETE FROM attachments WHERE domain = $1 AND app = $2', [e.data.domain, e.data.app])
        return
      case 'AppCreated':
      case 'AppDestroyed':
        await tx.query('DELETE FROM certs WHERE app = $1', [e.data.app])
        return
      default:
        return unhandled('certs', e)
    }
  },
}

/** One domain the router serves over TLS, with the PEMs it needs. */
export interface AttachedCert {
  domain: string
  app: string
  /** The certificate's name within its app. */
  name: string
  /** The PEM chain, leaf first. */
  certificate: string
  /** The private key, PKCS#8 PEM: write it to a file of mode 600. */
  key: string
  /** ISO 8601: the router may skip a certificate that has expired. */
  notAfter: string
}

/**
 * Every domain attached to a certificate, across apps, ordered by domain: what the router renders
 * its TLS server blocks (by SNI) from. Only domains the app still has (a removed domain detaches).
 */
export async function attachedCerts(pool: Queryable, only?: readonly string[]): Promise<AttachedCert[]> {
  const { rows } = await pool.query(
    `SELECT a.domain, a.app, a.name, c.certificate, c.key, c.not_after
       FROM rm_certs.attachments a JOIN rm_certs.certs c ON c.app = a.app AND c.name = a.name
      ${only ? 'WHERE a.app = ANY($1)' : ''}
      ORDER BY a.domain`,
    only ? [only] : [],
  )
  return rows.map((r) => ({
    domain: r.domain,
    app: r.app,
    name: r.name,
    certificate: r.certificate,
    key: r.key,
    notAfter: (r.not_after as Date).toISOString(),
  }))
}

/** A TLS certificate as the API shows it: never its key (nor, for brevity, its PEM chain). */
export interface CertView {
  name: string
  commonName: string
  sans: string[]
  notBefore: string
  notAfter: string
  fingerprint: string
  /** Whether `notAfter` has passed (the router stops serving it then). */
  expired: boolean
  /** The domains it serves, sorted. */
  domains: string[]
  created: string
}

/** The certificates of an app, by name, with the domains each serves. */
export async function listCerts(db: Queryable, app: string): Promise<CertView[]> {
  const { rows } = await db.query(
    `SELECT c.name, c.common_name, c.sans, c.not_before, c.not_after, c.fingerprint, c.created_at, c.not_after <= now() AS expired,
            COALESCE(array_agg(a.domain ORDER BY a.domain) FILTER (WHERE a.domain IS NOT NULL), '{}') AS domains
       FROM rm_certs.certs c LEFT JOIN rm_certs.attachments a ON a.app = c.app AND a.name = c.name
      WHERE c.app = $1
      GROUP BY c.app, c.name
      ORDER BY c.name`,
    [app],
  )
  return rows.map((r) => ({
    name: r.name,
    commonName: r.common_name,
    sans: r.sans,
    notBefore: (r.not_before as Date).toISOString(),
    notAfter: (r.not_after as Date).toISOString(),
    fingerprint: r.fingerprint,
    expired: r.expired,
    domains: r.domains,
    created: (r.created_at as Date).toISOString(),
  }))
}
