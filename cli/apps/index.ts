import type { Topic } from '../topics.js'

/** apps:*, config:*, releases:*, ps:*, domains:*, limits:*, perms:*, maintenance:* and their shortcuts. */
export const appTopics: Topic[] = []
