import type { Decider } from '../decider.js'
import { WharfError } from '../../core/errors.js'
import { narrow, type EventOf } from '../catalogue.js'
import type { NewEvent, RecordedEvent } from '../../events/index.js'

/** The one stream that holds the admin set, so the first-admin and last-admin rules are race-free. */
export const ACCOUNTS_STREAM = 'platform.accounts'

/** `platform.accounts` folded: who is an admin. */
export interface AdminsState {
  admins: Set<string>
}

export type AdminsCommand =
  /** At the first registration ever (no admin yet): makes `username` the admin. Later: nothing. */
  { type: 'ClaimFirstAdmin'; username: string } | { type: 'GrantAdmin'; username: string } | { type: 'RevokeAdmin'; username: string }

export type AdminsEvent = EventOf<'AdminGranted' | 'AdminRevoked'>

/**
 * The decider of `platform.accounts`. The admin set never becomes empty once it has a member
 * (revoking the last admin is refused), so "no admin yet" means "nobody has registered yet".
 */
export const adminsDecider: Decider<AdminsState, AdminsCommand> = {
  initialState: () => ({ admins: new Set() }),

  evolve(state: AdminsState, event: RecordedEvent): AdminsState {
    const e = narrow<AdminsEvent>(event)
    switch (e.type) {
      case 'AdminGranted':
        return { admins: new Set([...state.admins, e.data.username]) }
      case 'AdminRevoked': {
        const admins = new Set(state.admins)
        admins.delete(e.data.username)
        return { admins }
      }
      default:
        return unknownEvent(e)
    }
  },

  decide(command: AdminsCommand, state: AdminsState): NewEvent[] {
    const { username } = command
    switch (command.type) {
      case 'ClaimFirstAdmin':
        return state.admins.size === 0 ? [{ type: 'AdminGranted', data: { username } }] : []
      case 'GrantAdmin':
        return state.admins.has(username) ? [] : [{ type: 'AdminGranted', data: { username } }]
      case 'RevokeAdmin':
        if (!state.admins.has(username)) return []
        if (state.admins.size === 1)
          throw new WharfError('WHARF_FORBIDDEN', `${username} is the last admin; grant admin to someone else first`, { details: { username } })
        return [{ type: 'AdminRevoked', data: { username } }]
      default:
        return unknownCommand(command)
    }
  },
}

function unknownEvent(e: never): never {
  throw new Error(`platform.accounts cannot apply ${(e as RecordedEvent).type}`)
}

function unknownCommand(c: never): never {
  throw new Error(`unknown accounts command ${(c as { type: string }).type}`)
}
