import { backoffDelay, sleep } from '../core/backoff.js';
import { DuocellError, isDuocellError, toDuocellError } from '../core/errors.js';
import { logger } from '../core/logger.js';
import type { Store } from '../store/store.js';
import { trustedKey, type TrustedKey } from './keys.js';
import { verifyBundle, MAX_BUNDLE_BYTES, type VerifiedBundle } from './bundle.js';

const log = logger('duocell:ota');

/**
 * OTA policy delivery on the box:
 *
 *   poll URL (If-None-Match) ─┐
 *   POST /api/v1/ota/bundle ──┼─► verifyBundle() ─► version checks ─► Store.applyPolicyVersion()
 *   duocell ota apply FILE ───┘     (no writes)       (no writes)       (one transaction)
 *
 * Every refusal is a DuocellError with its own code, recorded as the last error in status().
 * The poller waits `intervalMs` (±10 % jitter) between checks, and backs off exponentially
 * with full jitter after failures (core/backoff).
 */

export interface OtaOptions {
  store: Store;
  /** Public keys from the board profile (base64 raw or PEM). Keys in the store are added. */
  boardKeys?: readonly string[];
  /** This cell's id (board profile or the `cell-id` setting). */
  cellId?: string | null;
  /** Bundle URL to poll (http: or https:). */
  url?: string | null;
  intervalMs?: number;
  backoffBaseMs?: number;
  backoffCapMs?: number;
  fetchTimeoutMs?: number;
  maxSkewMs?: number;
  now?: () => number;
  rand?: () => number;
  fetch?: typeof globalThis.fetch;
}

export type OtaSource = 'poll' | 'push' | 'cli';

export interface OtaStatus {
  currentVersion: number;
  highestVersion: number;
  appliedAt: string | null;
  bundleSha256: string | null;
  previousVersion: number | null;
  cellId: string | null;
  url: string | null;
  lastCheck: string | null;
  lastResult: 'applied' | 'not-modified' | 'refused' | 'error' | null;
  lastError: { code: string; message: string; at: string } | null;
  etag: string | null;
  trustedKeys: string[];
}

export interface ApplyResult {
  version: number;
  previousVersion: number;
  kind: 'full' | 'delta';
  keyId: string;
  sha256: string;
}

interface Runtime {
  lastCheck: number | null;
  lastResult: OtaStatus['lastResult'];
  lastError: { code: string; message: string; at: number } | null;
  etag: string | null;
}

const RUNTIME_KEY = 'runtime.ota';

export class OtaService {
  private readonly store: Store;
  private readonly o: OtaOptions;
  private readonly now: () => number;
  private abort: AbortController | undefined;
  private loop: Promise<void> | undefined;

  constructor(o: OtaOptions) {
    this.o = o;
    this.store = o.store;
    this.now = o.now ?? Date.now;
    if (o.url !== undefined && o.url !== null) checkUrl(o.url);
  }

  get cellId(): string | null {
    return this.o.cellId ?? this.store.getSetting('cell-id') ?? null;
  }

  get url(): string | null {
    return this.o.url ?? this.store.getSetting('ota-url') ?? null;
  }

  /** Trusted keys: the board's and the store's. An invalid board key is logged and skipped. */
  trustedKeys(): TrustedKey[] {
    const out: TrustedKey[] = [];
    for (const k of this.o.boardKeys ?? []) {
      try {
        out.push(trustedKey(k, 'board'));
      } catch (e) {
        log.error({ err: toDuocellError(e).toJSON() }, 'board profile carries an invalid OTA key');
      }
    }
    for (const r of this.store.listTrustedKeys()) {
      try {
        out.push(trustedKey(r.publicKey, 'store'));
      } catch (e) {
        log.error({ keyId: r.keyId, err: toDuocellError(e).toJSON() }, 'stored OTA key is invalid');
      }
    }
    return out;
  }

  /** Verify without writing anything (also checks the version against the store). */
  verify(input: Buffer | string | unknown): VerifiedBundle {
    const vb = verifyBundle(input, {
      trustedKeys: this.trustedKeys(),
      cellId: this.cellId,
      now: this.now(),
      ...(this.o.maxSkewMs !== undefined ? { maxSkewMs: this.o.maxSkewMs } : {}),
    });
    const st = this.store.otaState();
    if (vb.doc.version <= st.highestVersion) {
      throw new DuocellError('DC_OTA_ROLLBACK', `bundle version ${vb.doc.version} is not newer than ${st.highestVersion} (current ${st.currentVersion})`);
    }
    if (vb.doc.kind === 'delta' && vb.doc.base !== st.currentVersion) {
      throw new DuocellError('DC_OTA_BASE_MISMATCH', `delta against version ${vb.doc.base}, this box is at ${st.currentVersion}`);
    }
    return vb;
  }

  /** Verify and apply (one transaction). Throws the refusal; records the outcome for status(). */
  apply(input: Buffer | string | unknown, source: OtaSource): ApplyResult {
    try {
      const vb = this.verify(input);
      const before = this.store.otaState().currentVersion;
      try {
        this.store.applyPolicyVersion(
          { version: vb.doc.version, sha256: vb.sha256, kind: vb.doc.kind, ...(vb.doc.kind === 'delta' ? { base: vb.doc.base } : {}) },
          vb.content,
        );
      } catch (e) {
        if (isDuocellError(e) && e.code.startsWith('DC_OTA_')) throw e;
        // a delta naming a policy the box lacks, or an identifier already taken on the box
        if (isDuocellError(e) && (e.code === 'DC_STORE_NOT_FOUND' || e.code === 'DC_STORE_CONSTRAINT' || e.code === 'DC_STORE_IN_USE' || e.code === 'DC_STORE_INVALID')) {
          throw new DuocellError('DC_OTA_CONTENT_INVALID', `bundle ${vb.doc.version} cannot be applied here: ${e.message}`, { cause: e });
        }
        throw e;
      }
      log.info({ version: vb.doc.version, from: before, kind: vb.doc.kind, keyId: vb.keyId, source }, 'policy bundle applied');
      this.record({ lastResult: 'applied', lastError: null });
      return { version: vb.doc.version, previousVersion: before, kind: vb.doc.kind, keyId: vb.keyId, sha256: vb.sha256 };
    } catch (e) {
      const de = toDuocellError(e);
      log.warn({ source, err: de.toJSON() }, 'policy bundle refused');
      this.record({ lastResult: 'refused', lastError: { code: de.code, message: de.message, at: this.now() } });
      throw de;
    }
  }

  /** For the web layer (`POST /api/v1/ota/bundle`): the request body as bytes, text or parsed JSON. */
  push(body: Buffer | string | unknown): ApplyResult {
    return this.apply(body, 'push');
  }

  rollback(): { version: number; from: number } {
    const from = this.store.otaState().currentVersion;
    const st = this.store.rollbackPolicyVersion();
    log.warn({ from, to: st.currentVersion }, 'policy rolled back one version');
    return { version: st.currentVersion, from };
  }

  status(): OtaStatus {
    const st = this.store.otaState();
    const rt = this.runtime();
    const iso = (t: number | null): string | null => (t === null ? null : new Date(t).toISOString());
    return {
      currentVersion: st.currentVersion,
      highestVersion: st.highestVersion,
      appliedAt: iso(st.appliedAt),
      bundleSha256: st.bundleSha256,
      previousVersion: st.previous?.version ?? null,
      cellId: this.cellId,
      url: this.url,
      lastCheck: iso(rt.lastCheck),
      lastResult: rt.lastResult,
      lastError: rt.lastError === null ? null : { ...rt.lastError, at: iso(rt.lastError.at)! },
      etag: rt.etag,
      trustedKeys: this.trustedKeys().map((k) => `${k.keyId} (${k.source})`),
    };
  }

  private runtime(): Runtime {
    const raw = this.store.getSetting(RUNTIME_KEY);
    const empty: Runtime = { lastCheck: null, lastResult: null, lastError: null, etag: null };
    if (raw === undefined) return empty;
    try {
      return { ...empty, ...(JSON.parse(raw) as Partial<Runtime>) };
    } catch {
      return empty;
    }
  }

  /** Status bits are runtime state, not policy: stored without an audit row. */
  private record(patch: Partial<Runtime>): void {
    try {
      this.store.setRuntime(RUNTIME_KEY, JSON.stringify({ ...this.runtime(), ...patch }));
    } catch (e) {
      log.error({ err: toDuocellError(e).toJSON() }, 'cannot record OTA status');
    }
  }

  /**
   * One poll: GET the URL with If-None-Match. 304 → nothing; 200 → apply. Returns what
   * happened; throws DC_OTA_FETCH (or the refusal) on failure.
   */
  async checkNow(signal?: AbortSignal): Promise<'applied' | 'not-modified'> {
    const url = this.url;
    if (url === null) throw new DuocellError('DC_CONFIG_INVALID', 'no OTA URL configured');
    checkUrl(url);
    const rt = this.runtime();
    this.record({ lastCheck: this.now() });
    const f = this.o.fetch ?? globalThis.fetch;
    const timeout = AbortSignal.timeout(this.o.fetchTimeoutMs ?? 30_000);
    let res: Response;
    try {
      res = await f(url, {
        headers: { accept: 'application/json', ...(rt.etag !== null ? { 'if-none-match': rt.etag } : {}) },
        redirect: 'follow',
        signal: signal === undefined ? timeout : AbortSignal.any([signal, timeout]),
      });
    } catch (e) {
      throw this.fetchError(`GET ${redactUrl(url)}: ${(e as Error).message}`, e);
    }
    if (res.status === 304) {
      await res.body?.cancel();
      this.record({ lastResult: 'not-modified', lastError: null });
      return 'not-modified';
    }
    if (res.status !== 200) {
      await res.body?.cancel();
      throw this.fetchError(`GET ${redactUrl(url)}: HTTP ${res.status}`, undefined, res.status);
    }
    let body: Buffer;
    try {
      body = await readLimited(res, MAX_BUNDLE_BYTES);
    } catch (e) {
      throw this.fetchError(`GET ${redactUrl(url)}: ${(e as Error).message}`, e);
    }
    const etag = res.headers.get('etag');
    try {
      this.apply(body, 'poll');
    } finally {
      // remember the ETag whatever the outcome: a refused bundle is not fetched again until it changes
      if (etag !== null && etag.length <= 256) this.record({ etag });
    }
    return 'applied';
  }

  private fetchError(msg: string, cause?: unknown, status?: number): DuocellError {
    const e = new DuocellError('DC_OTA_FETCH', msg, { origin: 'peer', ...(cause !== undefined ? { cause } : {}), ...(status !== undefined ? { status } : {}) });
    this.record({ lastResult: 'error', lastError: { code: e.code, message: e.message, at: this.now() } });
    return e;
  }

  /** Start polling (no-op without a URL). */
  start(): void {
    if (this.loop !== undefined || this.url === null) return;
    this.abort = new AbortController();
    const signal = this.abort.signal;
    const interval = this.o.intervalMs ?? 15 * 60_000;
    const rand = this.o.rand ?? Math.random;
    this.loop = (async () => {
      let failures = 0;
      while (!signal.aborted) {
        try {
          await this.checkNow(signal);
          failures = 0;
        } catch (e) {
          if (signal.aborted) break;
          // refusals are final for this bundle (its ETag is kept); fetch errors back off
          if (isDuocellError(e, 'DC_OTA_FETCH')) failures++;
          else failures = 0;
        }
        const wait = failures > 0 ? backoffDelay(failures - 1, this.o.backoffBaseMs ?? 5_000, this.o.backoffCapMs ?? interval, rand) : interval * (0.9 + 0.2 * rand());
        try {
          await sleep(wait, signal);
        } catch {
          break;
        }
      }
    })();
  }

  async stop(): Promise<void> {
    this.abort?.abort(new DuocellError('DC_ABORTED', 'OTA poller stopped'));
    await this.loop;
    this.loop = undefined;
    this.abort = undefined;
  }
}

export function checkUrl(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new DuocellError('DC_CONFIG_INVALID', 'OTA URL is not a URL');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new DuocellError('DC_CONFIG_INVALID', 'OTA URL must be http: or https:');
  return u;
}

/** A URL for logs: no user info, no query (signed object-store URLs carry credentials there). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(invalid url)';
  }
}

async function readLimited(res: Response, max: number): Promise<Buffer> {
  const cl = res.headers.get('content-length');
  if (cl !== null && Number(cl) > max) {
    await res.body?.cancel();
    throw new Error(`body of ${cl} bytes exceeds ${max}`);
  }
  if (res.body === null) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let n = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    n += value.byteLength;
    if (n > max) {
      await reader.cancel();
      throw new Error(`body exceeds ${max} bytes`);
    }
    chunks.push(Buffer.from(value));
  }
  return Buffer.concat(chunks);
}
