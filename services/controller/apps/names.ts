import { randomInt } from 'node:crypto'

const ADJECTIVES = [
  'amber', 'brave', 'calm', 'crisp', 'dusty', 'eager', 'fancy', 'gentle', 'happy', 'icy', 'jolly', 'keen', 'lively', 'mellow',
  'nimble', 'odd', 'proud', 'quiet', 'rapid', 'salty', 'tidy', 'urban', 'vivid', 'windy', 'young', 'zesty',
]
const NOUNS = [
  'anchor', 'buoy', 'cargo', 'dock', 'eddy', 'ferry', 'galley', 'harbor', 'island', 'jetty', 'keel', 'lagoon', 'mast', 'narwhal',
  'oar', 'pier', 'quay', 'reef', 'sail', 'tide', 'umiak', 'vessel', 'wharf', 'yacht', 'zephyr',
]

/** A fresh app name for `apps:create` without one: `adjective-noun-1234` (a valid AppName). */
export function generateAppName(): string {
  return `${ADJECTIVES[randomInt(ADJECTIVES.length)]}-${NOUNS[randomInt(NOUNS.length)]}-${randomInt(1000, 10000)}`
}
