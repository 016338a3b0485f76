import type { Decider } from '../decider.js'
import { WharfError } from '../../core/errors.js'
import type { HostEvent } from './events.js'
import { claimStreamId, type NewEvent, type RecordedEvent } from '../../events/index.js'
import { narrow } from '../catalogue.js'
import { reservedDomainReason } from './names.js'

/** The claim stream of a host name. */
export function domainStream(domain: string): string {
  return claimStreamId('domain', domain)
}

/** Which app holds a domain (undefined: none). */
export interface ClaimState {
  app: string | undefined
}

export type ClaimCommand =
  /**
   * `holderStillUses`: whether the app that holds the claim still lists the domain on its own stream.
   * False when a crash left a stale claim behind (an app destroyed between its event and the release
   * of its claims): then the claim may be taken over. `platformDomain`: the domain the platform serves
   * apps under (`WHARF_DOMAIN`); it, the names under it and the platform's own hosts are never claimed.
   */
  { type: 'Claim'; domain: string; app: string; holderStillUses: boolean; platformDomain: string } | { type: 'Release'; domain: string; app: string }

type ClaimEvent = HostEvent

function decide(command: ClaimCommand, state: ClaimState): NewEvent[] {
  const { domain, app } = command
  switch (command.type) {
    case 'Claim': {
      const reserved = reservedDomainReason(domain, command.platformDomain)
      if (reserved) throw new WharfError('WHARF_RESERVED', `the domain ${domain} is reserved: ${reserved}`, { details: { domain } })
      if (state.app === app) return []
      if (state.app !== undefined && command.holderStillUses) {
        throw new WharfError('WHARF_EXISTS', `the domain ${domain} belongs to another app`, { details: { domain } })
      }
      return [
        ...(state.app !== undefined ? [{ type: 'DomainReleased', data: { domain, app: state.app } }] : []),
        { type: 'DomainClaimed', data: { domain, app } },
      ]
    }
    case 'Release':
      return state.app === app ? [{ type: 'DomainReleased', data: { domain, app } }] : []
    default:
      return unhandled(command)
  }
}

function evolve(_state: ClaimState, event: RecordedEvent): ClaimState {
  const e = narrow<ClaimEvent>(event)
  switch (e.type) {
    case 'DomainClaimed':
      return { app: e.data.app }
    case 'DomainReleased':
      return { app: undefined }
    default:
      return unhandled(e)
  }
}

function unhandled(x: never): never {
  throw new Error(`domain claim decider cannot handle ${(x as { type: string }).type}`)
}

/** The decider of `domain.<hash>` claim streams: a domain belongs to at most one app. */
export const claimDecider: Decider<ClaimState, ClaimCommand> = { initialState: () => ({ app: undefined }), evolve, decide }
