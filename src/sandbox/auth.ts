import { createHmac, randomBytes } from 'node:crypto'
import { MESSAGES } from './replies.ts'

export type OAuthOptions = {
  clientId: string
  clientSecret: string
  refreshToken: string
  /** Imgur's real tokens live for years (315360000 s); tests shorten it. */
  expiresInSeconds?: number
  accountId?: number
  accountUsername?: string
  /** Makes each access token (default: 40 random hex digits); a test that must spot the token passes its own. */
  issueToken?: () => string
}

export type Caller =
  | { auth: 'client-id'; clientId: string }
  | { auth: 'bearer'; clientId: string; accountId: number; username: string }

export type AuthFailure = { status: 401 | 403; message: string }

type Token = { clientId: string; accountId: number; username: string; expiresAt: number }

export const DEFAULT_ACCOUNT_ID = 170605143
export const DEFAULT_ACCOUNT_USERNAME = 'sandbox-user'
const DEFAULT_EXPIRES_IN_SECONDS = 315360000

/** Client ids and Bearer tokens: checks the Authorization header and issues tokens on refresh. */
export function createAuth(options: {
  clientIds: readonly string[] | undefined
  oauth: OAuthOptions | undefined
  now: () => number
}) {
  const tokens = new Map<string, Token>()
  // Keyed per sandbox: a tag cannot be checked against guessed credentials outside this process.
  const tagKey = randomBytes(32)

  function parse(header: string): { scheme: 'client-id' | 'bearer'; credential: string } | undefined {
    const match = /^(Client-ID|Bearer)\s+(\S+)\s*$/i.exec(header.trim())
    const scheme = match?.[1]?.toLowerCase()
    const credential = match?.[2]
    if (scheme === undefined || credential === undefined) return undefined
    return { scheme: scheme === 'bearer' ? 'bearer' : 'client-id', credential }
  }

  function authenticate(header: string | undefined): Caller | AuthFailure {
    if (header === undefined || header.trim() === '') return { status: 401, message: MESSAGES.authRequired }
    const parsed = parse(header)
    if (parsed === undefined) return { status: 403, message: MESSAGES.malformedAuth }
    const { scheme, credential } = parsed
    if (scheme === 'client-id') {
      if (options.clientIds !== undefined && !options.clientIds.includes(credential)) {
        return { status: 403, message: MESSAGES.invalidClientId }
      }
      return { auth: 'client-id', clientId: credential }
    }
    const token = tokens.get(credential)
    if (token === undefined || token.expiresAt <= options.now()) {
      return { status: 403, message: MESSAGES.tokenInvalid }
    }
    return { auth: 'bearer', clientId: token.clientId, accountId: token.accountId, username: token.username }
  }

  /**
   * An Authorization header as records may keep it: the scheme and 16 hex digits of an HMAC of the
   * credential (`Client-ID 3f9a…`, `Bearer …`, `malformed …`); undefined without a header.
   */
  function tag(header: string | undefined): string | undefined {
    if (header === undefined || header.trim() === '') return undefined
    const parsed = parse(header)
    const scheme = parsed === undefined ? 'malformed' : parsed.scheme === 'bearer' ? 'Bearer' : 'Client-ID'
    const digest = createHmac('sha256', tagKey)
      .update(parsed?.credential ?? header)
      .digest('hex')
    return `${scheme} ${digest.slice(0, 16)}`
  }

  /** The client id a request claims, valid or not (whose rate-limit headers an error shows). */
  function claimedClientId(header: string | undefined): string {
    const match = /^(Client-ID|Bearer)\s+(\S+)/i.exec(header?.trim() ?? '')
    if (match?.[1]?.toLowerCase() === 'bearer') return tokens.get(match[2] ?? '')?.clientId ?? 'anonymous'
    return match?.[2] ?? 'anonymous'
  }

  /**
   * `grant_type=refresh_token`; a new token replaces the account's earlier ones, which then answer
   * 403 "The access token provided is invalid." like Imgur's replaced tokens.
   */
  function refresh(fields: Map<string, unknown>) {
    const oauth = options.oauth
    if (fields.get('grant_type') !== 'refresh_token') {
      return { ok: false as const, message: 'Invalid grant_type parameter or parameter missing' }
    }
    if (
      oauth === undefined ||
      fields.get('client_id') !== oauth.clientId ||
      fields.get('client_secret') !== oauth.clientSecret ||
      fields.get('refresh_token') !== oauth.refreshToken
    ) {
      return { ok: false as const, message: 'Invalid refresh token' }
    }
    const accountId = oauth.accountId ?? DEFAULT_ACCOUNT_ID
    const username = oauth.accountUsername ?? DEFAULT_ACCOUNT_USERNAME
    const expiresIn = oauth.expiresInSeconds ?? DEFAULT_EXPIRES_IN_SECONDS
    for (const [key, token] of tokens) if (token.accountId === accountId) tokens.delete(key)
    const accessToken = oauth.issueToken?.() ?? randomBytes(20).toString('hex')
    tokens.set(accessToken, {
      clientId: oauth.clientId,
      accountId,
      username,
      expiresAt: options.now() + expiresIn * 1000,
    })
    return {
      ok: true as const,
      body: {
        access_token: accessToken,
        expires_in: expiresIn,
        token_type: 'bearer',
        scope: '',
        refresh_token: oauth.refreshToken,
        account_id: accountId,
        account_username: username,
      },
    }
  }

  return { authenticate, claimedClientId, refresh, tag }
}

export type Auth = ReturnType<typeof createAuth>

export function isFailure(value: Caller | AuthFailure): value is AuthFailure {
  return 'status' in value
}
