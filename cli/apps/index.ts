import type { Topic } from '../topics.js'
import { appsTopic } from './apps.js'
import { buildsTopic } from './builds.js'
import { configTopic } from './config.js'
import { domainsTopic } from './domains.js'
import { gitTopic } from './git.js'
import { limitsTopic } from './limits.js'
import { maintenanceTopic } from './maintenance.js'
import { permsTopic } from './perms.js'
import { psTopic } from './ps.js'
import { releasesTopic } from './releases.js'

/** apps:*, config:*, releases:*, builds:*, git:remote, ps:*, domains:*, limits:*, perms:*, maintenance:* and their shortcuts. */
export const appTopics: Topic[] = [appsTopic, configTopic, releasesTopic, buildsTopic, gitTopic, psTopic, domainsTopic, limitsTopic, permsTopic, maintenanceTopic]
