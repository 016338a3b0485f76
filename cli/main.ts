/**
 * The `wharf` command. The commands come with the controller; for now it knows its version and
 * explains itself. Errors are one line with a code, never a stack trace.
 */
import { Command, CommanderError } from 'commander'
import { VERSION } from '../core/version.js'

export function buildProgram(): Command {
  return new Command('wharf')
    .description('Wharf: git push to deploy, on your own machines.\nCommands for apps, config, releases and more arrive with the controller API.')
    .version(VERSION, '-v, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .argument('[command]', 'a command (see --help)')
    .action((command: string | undefined, _opts, cmd: Command) => {
      if (command) throw new CommanderError(1, 'wharf.unknownCommand', `unknown command '${command}' (WHARF_INVALID); see wharf --help`)
      cmd.outputHelp()
    })
    .configureOutput({ outputError: () => {} })
    .exitOverride()
}

try {
  await buildProgram().parseAsync(process.argv)
} catch (err) {
  const e = err as CommanderError
  // commander reports --help and --version as "errors" under exitOverride: they are not.
  if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') process.exit(0)
  console.error(`wharf: ${e.message.replace(/^error: /, '')}`)
  process.exit(e.exitCode || 1)
}
