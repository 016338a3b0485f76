import type { Topic } from '../topics.js'
import { appsTopic } from './apps.js'
import { buildsTopic } from './builds.js'
import { certsTopic } from './certs.js'
import { configTopic } from './config.js'
import { domainsTopic } from './domains.js'
import { drainsTopic } from './drains.js'
import { gitTopic } from './git.js'
import { limitsTopic } from './limits.js'
import { logsTopic } from './logs.js'
import { maintenanceTopic } from './maintenance.js'
import { permsTopic } from './perms.js'
import { psTopic } from './ps.js'
import { releasesTopic } from './releases.js'
import { runTopic } from './run.js'

/** apps:*, config:*, releases:*, builds:*, git:remote, ps:*, run, logs, drains:*, domains:*, certs:*, limits:*, perms:*, maintenance:* and their shortcuts. */
export const appTopics: Topic[] = [
  appsTopic,
  configTopic,
  releasesTopic,
  buildsTopic,
  gitTopic,
  psTopic,
  runTopic,
  logsTopic,
  drainsTopic,
  domainsTopic,
  certsTopic,
  limitsTopic,
  permsTopic,
  maintenanceTopic,
]
