/** Accounts: users, passwords, API tokens, SSH keys and admins. What other folders may use. */
export { userExists, getUser, listUsers, listAdmins, type UserView, type KeyView } from './handlers.js'
export { hashToken } from './secrets.js'
export { parsePublicKey, type PublicKey } from './keys.js'
