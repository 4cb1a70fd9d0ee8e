/** Why an image could not be decoded, in words a user can act on. */
import { ServiceError } from '../errors.ts'

export function tooManyPixels(width: number, height: number, pixels: number, limit: number, frames = 1) {
  const inFrames = frames > 1 ? ` in ${frames} frames` : ''
  return new ServiceError(
    'image_too_many_pixels',
    `image is ${width} × ${height} pixels${inFrames} (${megapixels(pixels)} megapixels), over the ${megapixels(limit)}-megapixel limit`,
  )
}

const megapixels = (pixels: number) => Number((pixels / 1e6).toFixed(pixels < 1e5 ? 3 : 1))

/** What libvips or the HEVC decoder said, as a reason a user can act on. */
export function decodeError(error: unknown, name: string): ServiceError {
  const said = error instanceof Error ? error.message : String(error)
  if (/exceeds pixel limit/i.test(said)) {
    return new ServiceError('image_too_many_pixels', 'image has more pixels than the limit', { cause: error })
  }
  // HEVC is decoded apart; other codecs HEIF may carry (JPEG 2000, VVC, ...) are not built in.
  if (/not been built in|decoder plugin/i.test(said)) {
    return new ServiceError(
      'unsupported_format',
      `${name} image is coded in a way this service cannot decode (and Imgur's API refuses); convert it to JPEG before uploading`,
      { cause: error },
    )
  }
  return new ServiceError(
    'image_unreadable',
    `the ${name} image could not be decoded (corrupt or truncated)`,
    {
      cause: error,
    },
  )
}
