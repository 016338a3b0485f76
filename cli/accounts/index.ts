import type { Topic } from '../topics.js'
import { authTopic } from './auth.js'
import { keysTopic } from './keys.js'
import { usersTopic } from './users.js'

/** auth:*, keys:*, users:* and their shortcuts. */
export const accountTopics: Topic[] = [authTopic, keysTopic, usersTopic]
