/** API keys for tests, made the way `imgur-upload keygen` makes them. */
import { createApiKey } from '../../src/cli/keygen.ts'

export const newKey = (): string => createApiKey('x').key

/** A key per name, and the API_KEYS value that configures them all. */
export function apiKeys<Name extends string>(...names: Name[]) {
  const made = names.map((name) => [name, createApiKey(name)] as const)
  return {
    keys: Object.fromEntries(made.map(([name, { key }]) => [name, key])) as Record<Name, string>,
    API_KEYS: made.map(([, { entry }]) => entry).join(','),
  }
}

export const bearer = (key: string) => ({ authorization: `Bearer ${key}` })
