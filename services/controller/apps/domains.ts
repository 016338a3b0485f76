import { WharfError } from '../../../core/errors.js'
import type { RecordedEvent } from '../../../events/index.js'
import { readState, runCommand } from '../../../domain/command.js'
import type { AuthUser, ControllerDeps } from '../context.js'
import { appStream, contextOf, runAppCommand } from './access.js'
import { fold } from '../../../domain/command.js'
import { appDecider } from '../../../domain/app/decider.js'
import { claimDecider, domainStream } from '../../../domain/host/decider.js'

/**
 * Adds a domain to an app, race-free across apps: first the domain's claim stream (one app per
 * domain, by expected version), then the app's stream. When the app refuses (gone, no access), the
 * claim is given back.
 */
export async function addDomain(deps: ControllerDeps, req: { user?: AuthUser; id: string }, app: string, domain: string): Promise<void> {
  const user = req.user!
  const claim = domainStream(domain)
  // The access check and the claim's read side by side (two round trips to the log at once, not one
  // after the other); the claim is folded where the Claim below decides on it without reading it again.
  const [access, claimState] = await Promise.allSettled([
    runAppCommand(deps, req, app, { type: 'CheckAccess', level: 'use' }, []),
    readState(deps.store, claimDecider, claim),
  ])
  // Access first, so a caller who may not use the app learns nothing about the domain.
  if (access.status === 'rejected') throw access.reason
  if (claimState.status === 'rejected') throw claimState.reason
  const holder = claimState.value.state.app
  // A claim left behind by a crash (its app no longer lists the domain) may be taken over.
  const holderStillUses = holder === undefined || holder === app ? true : await appUsesDomain(deps, holder, domain)
  const claimed = await runCommand(deps, {
    stream: claim,
    decider: claimDecider,
    command: { type: 'Claim', domain, app, holderStillUses, platformDomain: deps.cfg.domain },
    ctx: contextOf(user, req.id),
    waitFor: [],
  })
  try {
    await runAppCommand(deps, req, app, { type: 'AddDomain', domain }, ['domains'])
  } catch (err) {
    if (claimed.events.length > 0) await releaseClaim(deps, user, req.id, app, domain).catch(() => {})
    throw err
  }
}

/** Removes a domain from an app, then gives its claim back. */
export async function removeDomain(deps: ControllerDeps, req: { user?: AuthUser; id: string }, app: string, domain: string): Promise<void> {
  await runAppCommand(deps, req, app, { type: 'RemoveDomain', domain }, ['domains'])
  await releaseClaim(deps, req.user!, req.id, app, domain)
}

/** Gives back `app`'s claim on `domain` (nothing when another app holds it). */
export async function releaseClaim(deps: ControllerDeps, user: AuthUser, requestId: string, app: string, domain: string): Promise<void> {
  await runCommand(deps, {
    stream: domainStream(domain),
    decider: claimDecider,
    command: { type: 'Release', domain, app },
    ctx: contextOf(user, requestId),
    waitFor: [],
  })
}

async function appUsesDomain(deps: ControllerDeps, app: string, domain: string): Promise<boolean> {
  let events: RecordedEvent[]
  try {
    events = (await deps.store.readStream(appStream(app))).events
  } catch (err) {
    throw new WharfError('WHARF_UNAVAILABLE', 'cannot read the app that holds the domain', { cause: err })
  }
  const state = fold(appDecider, events)
  return state.exists && state.domains.includes(domain)
}
