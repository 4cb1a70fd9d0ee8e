/** Log paths that may carry a credential: pino replaces their values before a line is written. */
export const REDACT = [
  'clientId',
  '*.clientId',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'imgurClientId',
  'imgurClientSecret',
  'imgurRefreshToken',
  'config.imgurClientId',
  'config.imgurClientSecret',
  'config.imgurRefreshToken',
]
