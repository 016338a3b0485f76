import type { RoutePlugin } from '../context.js'
import { appsRoutes } from './apps.js'
import { authRoutes } from './auth.js'
import { builderRoutes } from './builder.js'
import { buildsRoutes } from './builds.js'
import { configRoutes } from './config.js'
import { domainsRoutes } from './domains.js'
import { formationRoutes } from './formation.js'
import { limitsRoutes } from './limits.js'
import { maintenanceRoutes } from './maintenance.js'
import { permsRoutes } from './perms.js'
import { releasesRoutes } from './releases.js'
import { eventsRoutes } from './events.js'
import { keyRoutes } from './keys.js'
import { userRoutes } from './users.js'

/** Every route file of the controller, registered under /v1. */
export const ROUTES: RoutePlugin[] = [authRoutes, keyRoutes, userRoutes, eventsRoutes, appsRoutes, configRoutes, releasesRoutes, buildsRoutes, builderRoutes, formationRoutes, domainsRoutes, limitsRoutes, permsRoutes, maintenanceRoutes]
