export * from './framer.js';
export * from './parsers.js';
export { AT_PARSE_REASONS, MAX_AT_LINE, MAX_AT_TEXT, unwrap, type AtParseError, type AtParseReason, type AtParsed, type AtResult } from './result.js';
export {
  parseCereg,
  parseCesqExtended,
  parseCgpaddrAll,
  parseAtAddress,
  parseCpinState,
  pinDecision,
  decodeGprsTimer2,
  decodeGprsTimer3,
  CPIN_CODES,
  type AtAddress,
  type CeregOptions,
  type CpinCode,
  type EpsRegistration,
  type ExtendedSignal,
  type PdpAddresses,
  type PinDecision,
  type PinPolicy,
  type PsmTimer,
  type SimPinKind,
  type SimPinState,
} from './threegpp.js';
export * from './cells.js';
export * from './vendors.js';
