import type { RoutePlugin } from '../context.js'
import { adminRoutes } from './admin.js'
import { appsRoutes } from './apps.js'
import { authRoutes } from './auth.js'
import { builderRoutes } from './builder.js'
import { buildsRoutes } from './builds.js'
import { certsRoutes } from './certs.js'
import { configRoutes } from './config.js'
import { domainsRoutes } from './domains.js'
import { drainsRoutes } from './drains.js'
import { hooksRoutes } from './hooks.js'
import { logsRoutes } from './logs.js'
import { formationRoutes } from './formation.js'
import { limitsRoutes } from './limits.js'
import { maintenanceRoutes } from './maintenance.js'
import { overviewRoutes } from './overview.js'
import { permsRoutes } from './perms.js'
import { psRoutes } from './ps.js'
import { releasesRoutes } from './releases.js'
import { runRoutes } from './run.js'
import { sessionRoutes } from './session.js'
import { traceRoutes } from './trace.js'
import { eventsRoutes } from './events.js'
import { keyRoutes } from './keys.js'
import { userRoutes } from './users.js'

/** Every route file of the controller, registered under /v1. */
export const ROUTES: RoutePlugin[] = [
  authRoutes,
  sessionRoutes,
  keyRoutes,
  userRoutes,
  eventsRoutes,
  traceRoutes,
  appsRoutes,
  overviewRoutes,
  configRoutes,
  releasesRoutes,
  buildsRoutes,
  builderRoutes,
  formationRoutes,
  domainsRoutes,
  certsRoutes,
  limitsRoutes,
  permsRoutes,
  maintenanceRoutes,
  runRoutes,
  psRoutes,
  logsRoutes,
  drainsRoutes,
  hooksRoutes,
  adminRoutes,
]
