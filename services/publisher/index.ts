export { publisher } from './service.js'
export { Publisher, accepts, publishedPort, type PublisherOptions } from './publisher.js'
export { classifyDeath, decide, identityOf, LABELS, slotOf, type Announcement, type ContainerIdentity } from './model.js'
