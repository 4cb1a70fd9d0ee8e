/** heic-decode ships no types: the part of its API this service uses. */
declare module 'heic-decode' {
  type Decoded = { width: number; height: number; data: Uint8ClampedArray }
  /** One top-level image: its size (after libheif's rotation/mirroring) is known before decoding. */
  type Image = { width: number; height: number; decode(): Promise<Decoded> }
  function decode(input: { buffer: Uint8Array }): Promise<Decoded>
  namespace decode {
    function all(input: { buffer: Uint8Array }): Promise<Image[] & { dispose(): void }>
  }
  export default decode
}
