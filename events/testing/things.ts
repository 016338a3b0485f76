import Type from 'typebox'
import { Catalogue } from '../catalogue.js'

/** A catalogue of one test event type, `ThingAdded` `{ n }` on app streams: for log tests that need no domain. */
export function thingCatalogue(): Catalogue {
  return new Catalogue([{ type: 'ThingAdded', version: 1, stream: 'app', schema: Type.Object({ n: Type.Integer() }, { additionalProperties: false }) }])
}
