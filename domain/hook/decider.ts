import { WharfError } from '../../core/errors.js'
import type { NewEvent, RecordedEvent } from '../../events/index.js'
import { narrow } from '../catalogue.js'
import type { Decider } from '../decider.js'
import type { HookAddedData, HookAttempt, HookEvent } from './events.js'

/** A `hook.<id>` stream folded. */
export interface HookState {
  status: 'none' | 'active' | 'disabled' | 'removed'
  owner: string | undefined
  /** Between `HookDeliveryFailed` and `HookRecovered` (or `HookDisabled`). */
  failing: boolean
}

export type HookCommand =
  | ({ type: 'AddHook' } & HookAddedData)
  | { type: 'RemoveHook'; id: string; by: string }
  | { type: 'RecordFailing'; id: string; delivery: string; seq: number; error: string; retryInMs: number }
  | { type: 'RecordRecovered'; id: string; delivery: string; seq: number; failedAttempts: number }
  | { type: 'DisableHook'; id: string; reason: string; failingSince: string }
  | { type: 'RecordAttempts'; id: string; attempts: HookAttempt[]; omitted: number }
  | { type: 'RequestRedelivery'; id: string; delivery: string; seq: number; request: string; by: string }

function notFound(id: string): WharfError {
  return new WharfError('WHARF_NOT_FOUND', `no hook ${id}`, { details: { hook: id } })
}

/**
 * The decider of `hook.<id>` streams. Who may add, see or change a hook is the controller's check
 * (an app's hooks need access to the app, platform hooks an admin, and only the owner or an admin
 * changes one); this holds the lifecycle: added once, removed once, and outcomes recorded only on a
 * live hook and only as changes (a hook already failing is not said to fail again).
 */
export const hookDecider: Decider<HookState, HookCommand> = {
  initialState: () => ({ status: 'none', owner: undefined, failing: false }),

  evolve(state: HookState, event: RecordedEvent): HookState {
    const e = narrow<HookEvent>(event)
    switch (e.type) {
      case 'HookAdded':
        return { status: 'active', owner: e.data.owner, failing: false }
      case 'HookRemoved':
        return { ...state, status: 'removed', failing: false }
      case 'HookDisabled':
        return { ...state, status: 'disabled', failing: false }
      case 'HookDeliveryFailed':
        return { ...state, failing: true }
      case 'HookRecovered':
        return { ...state, failing: false }
      case 'HookRedeliveryRequested':
      case 'HookAttempts':
        return state
      default:
        return unknownEvent(e)
    }
  },

  decide(command: HookCommand, state: HookState): NewEvent[] {
    const live = state.status === 'active' || state.status === 'disabled'
    switch (command.type) {
      case 'AddHook': {
        if (state.status !== 'none') throw new WharfError('WHARF_EXISTS', `hook ${command.id} exists already`, { details: { hook: command.id } })
        const { type: _, ...data } = command
        return [{ type: 'HookAdded', data }]
      }
      case 'RemoveHook':
        if (!live) throw notFound(command.id)
        return [{ type: 'HookRemoved', data: { id: command.id, by: command.by } }]
      case 'RecordFailing':
        if (state.status !== 'active' || state.failing) return []
        return [
          {
            type: 'HookDeliveryFailed',
            data: { id: command.id, delivery: command.delivery, seq: command.seq, error: command.error.slice(0, 500), retryInMs: command.retryInMs },
          },
        ]
      case 'RecordRecovered':
        if (state.status !== 'active' || !state.failing) return []
        return [{ type: 'HookRecovered', data: { id: command.id, delivery: command.delivery, seq: command.seq, failedAttempts: command.failedAttempts } }]
      case 'DisableHook':
        if (state.status !== 'active') return []
        return [{ type: 'HookDisabled', data: { id: command.id, reason: command.reason.slice(0, 500), failingSince: command.failingSince } }]
      case 'RecordAttempts':
        if (!live || command.attempts.length === 0) return []
        return [{ type: 'HookAttempts', data: { id: command.id, attempts: command.attempts, omitted: command.omitted } }]
      case 'RequestRedelivery': {
        if (!live) throw notFound(command.id)
        const { type: _, ...data } = command
        return [{ type: 'HookRedeliveryRequested', data }]
      }
      default:
        return unknownCommand(command)
    }
  },
}

function unknownEvent(e: never): never {
  throw new Error(`hook stream cannot apply ${(e as RecordedEvent).type}`)
}

function unknownCommand(c: never): never {
  throw new Error(`unknown hook command ${(c as { type: string }).type}`)
}
