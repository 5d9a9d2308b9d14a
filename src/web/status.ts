import type { ErrorCode } from '../core/codes.js';

/**
 * Which HTTP status an error code is answered with. Web codes are listed one by one; codes of
 * other layers (a store refusal, an OTA refusal) follow the rules below so that a code added
 * elsewhere gets a fitting status without touching this file. docs/errors.md shows the result
 * for every code and test/unit/web-errors.test.ts keeps it in step.
 */
const EXPLICIT: Partial<Record<ErrorCode, number>> = {
  DC_HTTP_NOT_FOUND: 404,
  DC_HTTP_BAD_REQUEST: 400,
  DC_WEB_AUTH_REQUIRED: 401,
  DC_WEB_BAD_CREDENTIALS: 401,
  DC_WEB_CSRF: 403,
  DC_WEB_HOST: 421,
  DC_WEB_RATE_LIMITED: 429,
  DC_WEB_NOT_SET_UP: 409,
  DC_WEB_ALREADY_SET_UP: 409,
  DC_WEB_FIRST_BOOT_SECRET: 403,
  DC_WEB_WEAK_PASSWORD: 400,
  DC_WEB_PAYLOAD_TOO_LARGE: 413,
  DC_WEB_UNSUPPORTED_MEDIA: 415,
  DC_WEB_UNAVAILABLE: 503,
  DC_WEB_BUSY: 503,
  DC_USAGE: 400,
  DC_CONFIG_INVALID: 400,
  DC_INTERNAL: 500,
  DC_ABORTED: 503,
  DC_MODEM_AT_REFUSED: 400,
};

const RULES: ReadonlyArray<readonly [RegExp, number]> = [
  [/_(NOT_FOUND|UNKNOWN|NO_INTERFACE)$/, 404],
  [/^DC_OTA_MALFORMED$/, 400],
  [/^DC_OTA_/, 422],
  [/_(INVALID|MALFORMED|BAD_REQUEST|ADDRESS)$/, 400],
  [/_(CONSTRAINT|IN_USE|ALREADY_\w+|STATE)$/, 409],
  [/_TIMEOUT$/, 504],
  [/_(BUSY|UNAVAILABLE|SHUTDOWN)$/, 503],
];

export function httpStatus(code: string): number {
  const e = EXPLICIT[code as ErrorCode];
  if (e !== undefined) return e;
  for (const [re, status] of RULES) if (re.test(code)) return status;
  return 500;
}
