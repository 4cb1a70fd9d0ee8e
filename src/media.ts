/** The media vocabulary shared by downloads (which sniff) and conversion (which decodes). */
import { ServiceError } from './errors.ts'

export type ImageType = { mime: string; ext: string }
/**
 * `image`: Imgur's `image` field takes it as is; `convertible`: Imgur refuses it, but it can be
 * converted to a format Imgur takes; `video`: Imgur's `video` field takes it.
 */
export type FileKind = 'image' | 'convertible' | 'video'
export type Sniffed = ImageType & { kind: FileKind; name: string }

export const refusedImage = (name: string) =>
  new ServiceError('unsupported_format', `${name} images are not accepted by Imgur's API`)
