import type { NewEvent, RecordedEvent } from '../events/index.js'

/**
 * A stream's logic with no I/O (emmett's Decider): `decide` turns a command and the current state
 * into new events or throws a WharfError; `evolve` folds one recorded event into the state.
 */
export interface Decider<State, Command> {
  initialState: () => State
  evolve(state: State, event: RecordedEvent): State
  decide(command: Command, state: State): NewEvent[]
}

/** The state after `events`, from the decider's initial state. */
export function fold<S, C>(decider: Decider<S, C>, events: readonly RecordedEvent[]): S {
  let state = decider.initialState()
  for (const e of events) state = decider.evolve(state, e)
  return state
}
