/** The service's logger: JSON lines, credentials redacted by path before any line is written. */
import pino, { type DestinationStream, type Logger } from 'pino'

/** Log paths that may carry a credential. */
export const REDACT = [
  'clientId',
  '*.clientId',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'imgurClientId',
  'imgurClientSecret',
  'imgurRefreshToken',
  '*.imgurClientId',
  '*.imgurClientSecret',
  '*.imgurRefreshToken',
]

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino({ level, redact: { paths: REDACT, censor: '[redacted]' } }, destination)
}
