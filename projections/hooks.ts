import type pg from 'pg'
import { narrow, type EventOf, type HookAttempt } from '../domain/index.js'
import type { RecordedEvent } from '../events/index.js'
import { unhandled, type Projection, type Queryable } from './projection.js'

type HooksEvent = EventOf<'HookAdded' | 'HookRemoved' | 'HookDisabled' | 'HookDeliveryFailed' | 'HookRecovered' | 'HookAttempts' | 'AppDestroyed'>

const HANDLES = [
  'HookAdded',
  'HookRemoved',
  'HookDisabled',
  'HookDeliveryFailed',
  'HookRecovered',
  'HookAttempts',
  'AppDestroyed',
] as const satisfies readonly HooksEvent['type'][]

/** Attempts kept per hook (the newest); older ones are deleted as new ones come. */
export const ATTEMPTS_KEPT = 1000

/**
 * `hooks`: the webhooks that are not removed (with their signing secret, which only
 * {@link hookTargets} returns, for the webhooks service) and `attempts`: the newest
 * {@link ATTEMPTS_KEPT} delivery attempts of each, as `HookAttempts` events recorded them.
 */
export const hooksProjection: Projection = {
  name: 'hooks',
  version: 1,
  handles: HANDLES,
  tables: `
    CREATE TABLE hooks (
      id              text PRIMARY KEY,
      url             text NOT NULL,
      scope           text,
      events          text[] NOT NULL,
      owner           text NOT NULL,
      secret          text NOT NULL,
      created_at      timestamptz NOT NULL,
      added_seq       bigint NOT NULL,
      disabled        boolean NOT NULL DEFAULT false,
      app_gone        boolean NOT NULL DEFAULT false,
      disabled_reason text,
      failing_since   timestamptz,
      last_error      text
    );
    CREATE INDEX hooks_owner ON hooks (owner);
    CREATE TABLE attempts (
      hook        text NOT NULL,
      event_seq   bigint NOT NULL,
      idx         integer NOT NULL,
      delivery    text NOT NULL,
      seq         bigint NOT NULL,
      type        text NOT NULL,
      at          timestamptz NOT NULL,
      status      integer NOT NULL,
      duration_ms integer NOT NULL,
      error       text,
      request     text,
      PRIMARY KEY (hook, event_seq, idx)
    );
    CREATE INDEX attempts_delivery ON attempts (hook, delivery);
  `,
  async apply(event: RecordedEvent, tx: pg.PoolClient): Promise<void> {
    const e = narrow<HooksEvent>(event)
    switch (e.type) {
      case 'HookAdded':
        await tx.query(
          `INSERT INTO hooks (id, url, scope, events, owner, secret, created_at, added_seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           ON CONFLICT (id) DO NOTHING`,
          [e.data.id, e.data.url, e.data.scope, e.data.events, e.data.owner, e.data.secret, e.occurredAt, e.seq],
        )
        return
      case 'HookRemoved':
        await tx.query('DELETE FROM hooks WHERE id = $1', [e.data.id])
        await tx.query('DELETE FROM attempts WHERE hook = $1', [e.data.id])
        return
      case 'HookDisabled':
        await tx.query('UPDATE hooks SET disabled = true, disabled_reason = $2, failing_since = NULL WHERE id = $1', [e.data.id, e.data.reason])
        return
      case 'HookDeliveryFailed':
        await tx.query('UPDATE hooks SET failing_since = $2, last_error = $3 WHERE id = $1', [e.data.id, e.occurredAt, e.data.error])
        return
      case 'HookRecovered':
        await tx.query('UPDATE hooks SET failing_since = NULL WHERE id = $1', [e.data.id])
        return
      case 'AppDestroyed':
        // An app's hooks end with it: an app made later under the name is another app (its incarnation).
        await tx.query('UPDATE hooks SET app_gone = true WHERE scope = $1', [e.data.app])
        return
      case 'HookAttempts': {
        const a = e.data.attempts
        await tx.query(
          `INSERT INTO attempts (hook, event_seq, idx, delivery, seq, type, at, status, duration_ms, error, request)
           SELECT $1, $2, * FROM unnest($3::int[], $4::text[], $5::bigint[], $6::text[], $7::timestamptz[], $8::int[], $9::int[], $10::text[], $11::text[])
           ON CONFLICT DO NOTHING`,
          [
            e.data.id,
            e.seq,
            a.map((_, i) => i),
            a.map((x) => x.delivery),
            a.map((x) => x.seq),
            a.map((x) => x.type),
            a.map((x) => x.at),
            a.map((x) => x.status),
            a.map((x) => x.durationMs),
            a.map((x) => x.error ?? null),
            a.map((x) => x.request ?? null),
          ],
        )
        const lastError = a.findLast((x) => x.error)?.error
        if (lastError) await tx.query('UPDATE hooks SET last_error = $2 WHERE id = $1', [e.data.id, lastError])
        // Bounded: the newest ATTEMPTS_KEPT of the hook stay.
        await tx.query(
          `DELETE FROM attempts WHERE hook = $1 AND (event_seq, idx) < (
             SELECT event_seq, idx FROM attempts WHERE hook = $1 ORDER BY event_seq DESC, idx DESC OFFSET $2 LIMIT 1)`,
          [e.data.id, ATTEMPTS_KEPT - 1],
        )
        return
      }
      default:
        return unhandled('hooks', e)
    }
  },
}

/** A webhook as the API shows it (never its secret). */
export interface HookView {
  id: string
  url: string
  /** The app whose events it gets; null: the whole platform's. */
  app: string | null
  events: string[]
  owner: string
  /** `active`, `failing` (retrying with backoff) or `disabled` (gave up after the retry window, or its app was destroyed). */
  status: 'active' | 'failing' | 'disabled'
  created: string
  failingSince: string | null
  lastError: string | null
}

const HOOK_COLUMNS = 'id, url, scope, events, owner, created_at, disabled, app_gone, disabled_reason, failing_since, last_error'

function hookView(r: any): HookView {
  return {
    id: r.id,
    url: r.url,
    app: r.scope,
    events: r.events,
    owner: r.owner,
    status: r.disabled || r.app_gone ? 'disabled' : r.failing_since ? 'failing' : 'active',
    created: (r.created_at as Date).toISOString(),
    failingSince: r.failing_since ? (r.failing_since as Date).toISOString() : null,
    lastError: r.app_gone ? `the app ${r.scope} was destroyed` : r.disabled ? (r.disabled_reason ?? r.last_error) : r.last_error,
  }
}

/** The hooks a user may see: their own; an admin, every hook. Oldest first. */
export async function listHooks(db: Queryable, user: { username: string; admin: boolean }, app?: string): Promise<HookView[]> {
  const values: unknown[] = []
  const where: string[] = []
  if (!user.admin) where.push(`owner = $${values.push(user.username)}`)
  if (app !== undefined) where.push(`scope = $${values.push(app)}`)
  const { rows } = await db.query(
    `SELECT ${HOOK_COLUMNS} FROM rm_hooks.hooks ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at, id`,
    values,
  )
  return rows.map(hookView)
}

/** One hook (any owner's), or undefined: the caller checks who may see it. */
export async function getHook(db: Queryable, id: string): Promise<HookView | undefined> {
  const { rows } = await db.query(`SELECT ${HOOK_COLUMNS} FROM rm_hooks.hooks WHERE id = $1`, [id])
  return rows[0] && hookView(rows[0])
}

/** What the webhooks service needs to deliver to a hook, its secret included. */
export interface HookTarget {
  id: string
  url: string
  app: string | null
  events: string[]
  owner: string
  secret: string
  /** The seq of its `HookAdded`: it gets the events after it. */
  addedSeq: number
  /** Disabled, or its app was destroyed: it sends nothing more (redeliveries aside). */
  disabled: boolean
}

/** Every hook not removed, with its secret (the webhooks service's only). */
export async function hookTargets(db: Queryable, id?: string): Promise<HookTarget[]> {
  const { rows } = await db.query(
    `SELECT id, url, scope, events, owner, secret, added_seq, disabled OR app_gone AS disabled FROM rm_hooks.hooks ${id === undefined ? '' : 'WHERE id = $1'} ORDER BY added_seq`,
    id === undefined ? [] : [id],
  )
  return rows.map((r) => ({
    id: r.id,
    url: r.url,
    app: r.scope,
    events: r.events,
    owner: r.owner,
    secret: r.secret,
    addedSeq: Number(r.added_seq),
    disabled: r.disabled,
  }))
}

/** One recorded attempt, as `hooks:deliveries` shows it. */
export type AttemptView = HookAttempt

/** The newest `limit` attempts of a hook (of one delivery when given), oldest first. */
export async function hookAttempts(db: Queryable, hook: string, opts: { limit: number; delivery?: string; request?: string }): Promise<AttemptView[]> {
  const values: unknown[] = [hook, opts.limit]
  const where = ['hook = $1']
  if (opts.delivery) where.push(`delivery = $${values.push(opts.delivery)}`)
  if (opts.request) where.push(`request = $${values.push(opts.request)}`)
  const { rows } = await db.query(
    `SELECT * FROM (SELECT event_seq, idx, delivery, seq, type, at, status, duration_ms, error, request FROM rm_hooks.attempts
       WHERE ${where.join(' AND ')} ORDER BY event_seq DESC, idx DESC LIMIT $2) newest ORDER BY event_seq, idx`,
    values,
  )
  return rows.map((r) => ({
    delivery: r.delivery,
    seq: Number(r.seq),
    type: r.type,
    at: (r.at as Date).toISOString(),
    status: r.status,
    durationMs: r.duration_ms,
    ...(r.error ? { error: r.error } : {}),
    ...(r.request ? { request: r.request } : {}),
  }))
}
