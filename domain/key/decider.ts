import type { Decider } from '../decider.js'
import { WharfError } from '../../core/errors.js'
import type { KeyEvent } from './events.js'
import type { NewEvent, RecordedEvent } from '../../events/index.js'
import { narrow } from '../catalogue.js'

/** A `key.<hash>` stream folded: who holds the key, if anyone. */
export interface KeyClaimState {
  holder: string | undefined
}

export type KeyClaimCommand = { type: 'ClaimKey'; fingerprint: string; username: string } | { type: 'ReleaseKey'; fingerprint: string; username: string }

export type KeyClaimEvent = KeyEvent

/**
 * The decider of `key.<hash>` claim streams: a key belongs to at most one user. Claiming a key one
 * holds already decides nothing (a retried add after a crash between the claim and `KeyAdded`).
 */
export const keyClaimDecider: Decider<KeyClaimState, KeyClaimCommand> = {
  initialState: () => ({ holder: undefined }),

  evolve(state: KeyClaimState, event: RecordedEvent): KeyClaimState {
    const e = narrow<KeyClaimEvent>(event)
    switch (e.type) {
      case 'KeyClaimed':
        return { holder: e.data.username }
      case 'KeyReleased':
        return state.holder === e.data.username ? { holder: undefined } : state
      default:
        return unknownEvent(e)
    }
  },

  decide(command: KeyClaimCommand, state: KeyClaimState): NewEvent[] {
    const { fingerprint, username } = command
    switch (command.type) {
      case 'ClaimKey':
        if (state.holder === username) return []
        if (state.holder !== undefined) throw new WharfError('WHARF_EXISTS', `the key ${fingerprint} is registered already`, { details: { fingerprint } })
        return [{ type: 'KeyClaimed', data: { fingerprint, username } }]
      case 'ReleaseKey':
        return state.holder === username ? [{ type: 'KeyReleased', data: { fingerprint, username } }] : []
      default:
        return unknownCommand(command)
    }
  },
}

function unknownEvent(e: never): never {
  throw new Error(`key claim stream cannot apply ${(e as RecordedEvent).type}`)
}

function unknownCommand(c: never): never {
  throw new Error(`unknown key claim command ${(c as { type: string }).type}`)
}
