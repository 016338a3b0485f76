import type pg from 'pg'
import { WharfError } from '../../../core/errors.js'
import { streamId, type EventContext } from '../../../events/index.js'
import { userExists } from '../accounts/index.js'
import { runCommand, type CommandResult } from '../../../domain/command.js'
import type { AuthUser, ControllerDeps } from '../context.js'
import { timed, type Steps } from '../timing.js'
import { appDecider, type Actor, type AppCommand, type AppState } from '../../../domain/app/decider.js'

/** The actor of a signed-in request. */
export function actorOf(user: AuthUser): Actor {
  return { kind: 'user', username: user.username, admin: user.admin }
}

/** Who and why for the events of one request: `user:<name>`, correlated by the request id. */
export function contextOf(user: AuthUser, requestId: string): EventContext {
  return { actor: `user:${user.username}`, correlationId: requestId }
}

/** The stream of an app. */
export function appStream(app: string): string {
  return streamId('app', app)
}

/** Distributes `Omit` over the command union so each variant keeps its own fields. */
type WithoutBy<C> = C extends unknown ? Omit<C, 'by'> : never

/**
 * Runs one command on an app's stream for a signed-in user (the decider checks the user's access)
 * and waits until `waitFor` read models include it.
 */
export async function runAppCommand(
  deps: ControllerDeps,
  req: { user?: AuthUser | undefined; id: string; steps?: Steps },
  app: string,
  command: WithoutBy<AppCommand>,
  waitFor: string[],
): Promise<CommandResult<AppState>> {
  const user = signedIn(req)
  try {
    return await runCommand(deps, {
      stream: appStream(app),
      decider: appDecider,
      command: { ...command, by: actorOf(user) } as AppCommand,
      ctx: contextOf(user, req.id),
      waitFor,
      timed: (step, ms) => timed(req, step, ms),
    })
  } catch (err) {
    // The decider of an app that does not exist has no name to put in its refusal.
    if (err instanceof WharfError && err.code === 'WHARF_NOT_FOUND' && err.message === 'no app ') {
      throw new WharfError('WHARF_NOT_FOUND', `no app ${app}`, { details: { app } })
    }
    throw err
  }
}

/** The user of a request; the auth hook guarantees it on every non-public route. */
export function signedIn(req: { user?: AuthUser | undefined }): AuthUser {
  if (!req.user) throw new WharfError('WHARF_UNAUTHORIZED', 'sign in first: no token (wharf auth:login)')
  return req.user
}

/** The access check of app routes lives with the read models it reads (the builder runs it too). */

/** Throws `WHARF_NOT_FOUND` unless the user account exists. */
export async function requireUser(pool: pg.Pool, username: string): Promise<void> {
  if (!(await userExists(pool, username))) throw new WharfError('WHARF_NOT_FOUND', `no user ${username}`, { details: { username } })
}
