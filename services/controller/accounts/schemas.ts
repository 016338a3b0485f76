/** Schemas the account routes share. */
import Type from 'typebox'

export const ErrorBody = Type.Object({ code: Type.String(), message: Type.String(), details: Type.Optional(Type.Unknown()) })
export const Password = Type.String({ minLength: 8, maxLength: 1024 })
export const UserBody = Type.Object({ username: Type.String(), email: Type.String(), admin: Type.Boolean() }, { additionalProperties: false })
export const UserRow = Type.Object(
  { username: Type.String(), email: Type.String(), admin: Type.Boolean(), createdAt: Type.String() },
  { additionalProperties: false },
)
export const TokenBody = Type.Object({ token: Type.String() }, { additionalProperties: false })
