import { Value } from 'typebox/value'
import { WharfError } from '../../core/errors.js'
import { ProcessType } from '../../domain/index.js'

/** At most this many process types in one Procfile. */
export const MAX_PROCESS_TYPES = 20
/** A command's longest length, in characters. */
export const MAX_COMMAND_LENGTH = 4096

/**
 * The process types of a Heroku Procfile: one `type: command` a line; blank lines and `#` comments
 * are skipped, CRLF line ends are fine. A line that breaks a rule is a `WHARF_INVALID` naming it.
 * https://devcenter.heroku.com/articles/procfile
 */
export function parseProcfile(text: string): Record<string, string> {
  const types: Record<string, string> = {}
  const lines = text.split(/\r?\n/)
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const bad = (what: string): WharfError => new WharfError('WHARF_INVALID', `Procfile line ${i + 1}: ${what}`)
    const colon = line.indexOf(':')
    if (colon < 0) throw bad(`expected "type: command", found ${JSON.stringify(line.slice(0, 80))}`)
    const type = line.slice(0, colon).trim()
    const command = line.slice(colon + 1).trim()
    const shown = JSON.stringify(type.slice(0, 80))
    if (!Value.Check(ProcessType, type)) {
      throw bad(`process type ${shown} must be 1-30 lower-case letters, digits, "_" or "-", starting with a letter`)
    }
    if (command === '') throw bad(`process type ${type} has no command`)
    if (command.length > MAX_COMMAND_LENGTH) throw bad(`the command of ${type} is ${command.length} characters; at most ${MAX_COMMAND_LENGTH}`)
    if (Object.hasOwn(types, type)) throw bad(`process type ${type} is declared twice`)
    if (Object.keys(types).length === MAX_PROCESS_TYPES) throw bad(`more than ${MAX_PROCESS_TYPES} process types`)
    types[type] = command
  }
  return types
}
