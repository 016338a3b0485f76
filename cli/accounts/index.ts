import type { Topic } from '../topics.js'

/** auth:*, keys:*, users:* and their shortcuts. */
export const accountTopics: Topic[] = []
