/** Signed OTA policy bundles: keys, envelope, verification, apply/rollback, delivery. */
export { OtaService, checkUrl, redactUrl, type OtaOptions, type OtaStatus, type ApplyResult, type OtaSource } from './service.js';
export {
  verifyBundle,
  parseEnvelope,
  parseDocument,
  parseDetachedSignature,
  checkSignature,
  signDocument,
  makeEnvelope,
  MAX_BUNDLE_BYTES,
  DEFAULT_MAX_SKEW_MS,
  type Envelope,
  type SignatureEntry,
  type BundleDocument,
  type FullDocument,
  type DeltaDocument,
  type VerifiedBundle,
} from './bundle.js';
export { generateKeyPair, boardKeyTexts, boardOtaUrl, parsePublicKey, parsePrivateKey, trustedKey, keyIdOf, type TrustedKey } from './keys.js';
export { BUNDLE_SCHEMA, BUNDLE_FORMAT, FULL_SCHEMA, DELTA_SCHEMA, validate } from './schema.js';
