/** Convert protocol faults: each carries the Error TLV code RFC 8803 prescribes for it. */
import { DuocellError, type ErrorCode } from '../../core/errors.js';
import { ConvertErrorCode } from './constants.js';

const CODE_FOR: Readonly<Record<number, ErrorCode>> = {
  [ConvertErrorCode.UNSUPPORTED_VERSION]: 'DC_CONVERT_UNSUPPORTED_VERSION',
  [ConvertErrorCode.MALFORMED_MESSAGE]: 'DC_CONVERT_MALFORMED',
  [ConvertErrorCode.UNSUPPORTED_MESSAGE]: 'DC_CONVERT_UNSUPPORTED_MESSAGE',
  [ConvertErrorCode.MISSING_COOKIE]: 'DC_CONVERT_MISSING_COOKIE',
  [ConvertErrorCode.NOT_AUTHORIZED]: 'DC_CONVERT_NOT_AUTHORIZED',
  [ConvertErrorCode.UNSUPPORTED_TCP_OPTION]: 'DC_CONVERT_UNSUPPORTED_TCP_OPTION',
};

/** A local protocol fault, carrying the Convert error code to answer with. */
export function convertFault(convertError: number, message: string, extra: Record<string, unknown> = {}): DuocellError {
  const code = CODE_FOR[convertError] ?? 'DC_CONVERT_MALFORMED';
  return new DuocellError(code, message, { origin: 'local', convertError, ...extra });
}

export function malformed(message: string, offset: number): DuocellError {
  return convertFault(ConvertErrorCode.MALFORMED_MESSAGE, message, { offset });
}

export function encodeFault(message: string): DuocellError {
  return new DuocellError('DC_CONVERT_ENCODE', message, { origin: 'local' });
}

export const asBuffer = (b: Uint8Array): Buffer =>
  Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);

export const pad4 = (n: number): number => (n + 3) & ~3;
