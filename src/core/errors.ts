import { CODES, type ErrorCode } from './codes.js';

/**
 * Where a failure came from. `local`: our own checks (timeouts, malformed input, bugs).
 * `device`: the modem or radio said so (CME error, QMI result). `kernel`: an errno or a
 * netlink error. `peer`: the remote end of a protocol (a Convert Error TLV, a SOCKS reply).
 */
export type ErrorOrigin = 'local' | 'device' | 'kernel' | 'peer';

export interface ErrorDetail {
  readonly origin?: ErrorOrigin;
  readonly errno?: number;
  readonly syscall?: string;
  readonly cause?: unknown;
  readonly [key: string]: unknown;
}

/** The one Error subclass of duocell: a stable `code`, an origin, and structured detail. */
export class DuocellError extends Error {
  override readonly name = 'DuocellError';
  readonly code: ErrorCode;
  readonly origin: ErrorOrigin;
  readonly detail: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message?: string, detail: ErrorDetail = {}) {
    super(message ?? CODES[code], detail.cause === undefined ? undefined : { cause: detail.cause });
    this.code = code;
    const { origin, cause: _cause, ...rest } = detail;
    this.origin = origin ?? (detail.errno === undefined ? 'local' : 'kernel');
    this.detail = rest;
  }

  get errno(): number | undefined {
    return typeof this.detail.errno === 'number' ? this.detail.errno : undefined;
  }

  toJSON(): { code: ErrorCode; message: string; origin: ErrorOrigin } {
    return { code: this.code, message: this.message, origin: this.origin };
  }
}

export function isDuocellError(e: unknown, code?: ErrorCode): e is DuocellError {
  return e instanceof DuocellError && (code === undefined || e.code === code);
}

/** Wrap anything thrown into a DuocellError, keeping a DuocellError as it is. */
export function toDuocellError(e: unknown, code: ErrorCode = 'DC_INTERNAL'): DuocellError {
  if (e instanceof DuocellError) return e;
  if (e instanceof Error) {
    const n = e as NodeJS.ErrnoException & { errno?: number };
    return new DuocellError(code, e.message, {
      cause: e,
      ...(typeof n.errno === 'number' ? { errno: Math.abs(n.errno) } : {}),
      ...(typeof n.code === 'string' ? { sysCode: n.code } : {}),
      ...(typeof n.syscall === 'string' ? { syscall: n.syscall } : {}),
    });
  }
  return new DuocellError(code, String(e));
}

export { CODES, type ErrorCode };
