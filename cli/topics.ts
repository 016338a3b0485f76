import type { Command } from 'commander'
import { accountTopics } from './accounts/index.js'
import { adminTopic } from './admin.js'
import { appTopics } from './apps/index.js'
import { eventsTopic } from './events.js'
import { hooksTopic } from './hooks.js'

/**
 * One topic of the CLI (`apps`, `config`, ...): adds its `topic:verb` commands to the program.
 * Actions throw CliError for failures; main prints them as one line.
 */
export type Topic = (program: Command) => void

/** Every topic, in `--help` order. */
export const TOPICS: Topic[] = [...accountTopics, ...appTopics, eventsTopic, hooksTopic, adminTopic]
