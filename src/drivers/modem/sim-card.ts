import { DuocellError, isDuocellError } from '../../core/errors.js';
import { logger } from '../../core/logger.js';
import { decodeDmsPinStatus, decodePinRetries, decodeUimCardStatus, PIN_STATE, UIM_CARD_PRESENT, type PinStatus, type Tlv } from '../../protocols/qmi/index.js';
import { PinBook, type SimUnit } from './control.js';
import type { QmiClient } from './qmi.js';

const log = logger('duocell:modem');

const QMI_INCORRECT_PIN = 12;
const QMI_PIN_BLOCKED = 35;

/** A SIM with no PIN1 TLV or no application: nothing to unlock. */
const NO_PIN: PinStatus = { status: PIN_STATE.disabled, verifyRetries: 3, unblockRetries: 10 };

/**
 * The SIM as its own unit: PIN1 state and the safe unlock, over QMI.
 *
 * PIN1 status comes from DMS UIM Get PIN Status or, on modems whose DMS no longer carries the
 * UIM messages (newer Quectel RM5xx), from UIM Get Card Status; once DMS refuses, UIM is used
 * from then on. Both report the same state numbers and the retry counters.
 *
 * PIN safety: the retry counter is read before every verify; a PIN is tried only when at least
 * `minPinRetries` attempts remain (default 2, so a wrong PIN never uses the last attempt), and a
 * PIN the SIM rejected once is never tried again automatically (kept across re-probes).
 * Errors: DC_MODEM_SIM (no card, blocked), DC_MODEM_PIN_REQUIRED, DC_MODEM_PIN_WRONG,
 * DC_MODEM_PIN_UNSAFE; anything else (timeouts, a lost port) is passed on as it came.
 */
export class SimCard implements SimUnit {
  readonly pins: PinBook;
  #uimService = false;

  constructor(
    readonly qmi: () => QmiClient,
    readonly minPinRetries: number,
    pin?: string,
  ) {
    this.pins = new PinBook(pin);
  }

  async pinStatus(): Promise<PinStatus> {
    if (!this.#uimService) {
      try {
        return (await this.qmi().ask('dms.uimGetPinStatus', decodeDmsPinStatus)).pin1 ?? NO_PIN;
      } catch (e) {
        if (!isDuocellError(e, 'DC_QMI_RESULT')) throw e;
        log.info({ err: e.message }, 'DMS UIM messages refused: using the UIM service for the SIM');
        this.#uimService = true;
      }
    }
    const cs = await this.qmi().ask('uim.getCardStatus', decodeUimCardStatus);
    const card = cs.cards.find((c) => c.state === UIM_CARD_PRESENT);
    if (!card) throw new DuocellError('DC_MODEM_SIM', 'no SIM card present', { origin: 'device' });
    return card.applications[0]?.pin1 ?? NO_PIN;
  }

  /** probing: does the SIM ask for its PIN? */
  async check(): Promise<{ verdict: 'locked' | 'ready'; reason: string }> {
    return (await this.needsPin()) ? { verdict: 'locked', reason: 'the SIM asks for its PIN' } : { verdict: 'ready', reason: 'SIM ready' };
  }

  async needsPin(): Promise<boolean> {
    const s = await this.pinStatus();
    return s.status === PIN_STATE.blocked || s.status === PIN_STATE.permanentlyBlocked || s.status === PIN_STATE.enabledNotVerified;
  }

  /** Verify the configured PIN if the SIM asks for one and it is safe; throws DC_MODEM_PIN_* / DC_MODEM_SIM otherwise. */
  async unlock(): Promise<void> {
    const s = await this.pinStatus();
    if (s.status === PIN_STATE.blocked || s.status === PIN_STATE.permanentlyBlocked)
      throw new DuocellError('DC_MODEM_SIM', `the SIM is blocked (PUK needed, ${s.unblockRetries} PUK attempts left); duocell never enters a PUK`, { origin: 'device', unblockRetries: s.unblockRetries });
    if (s.status !== PIN_STATE.enabledNotVerified) return;
    const pin = this.pins.pin;
    if (pin === undefined || pin === '') throw new DuocellError('DC_MODEM_PIN_REQUIRED', `the SIM needs a PIN and none is configured (${s.verifyRetries} attempts left)`, { retries: s.verifyRetries });
    if (this.pins.wasRejected(pin))
      throw new DuocellError('DC_MODEM_PIN_WRONG', `the configured PIN was rejected before; not trying it again (${s.verifyRetries} attempts left)`, { retries: s.verifyRetries });
    if (s.verifyRetries < this.minPinRetries)
      throw new DuocellError('DC_MODEM_PIN_UNSAFE', `only ${s.verifyRetries} PIN attempt(s) left: not trying, a wrong PIN would lock the SIM`, { retries: s.verifyRetries });
    const key = this.#uimService ? 'uim.verifyPin' : 'dms.uimVerifyPin';
    try {
      if (key === 'uim.verifyPin') await this.qmi().call(key, { session: { session_type: 'primary-gw-provisioning', application_identifier: '' }, info: { pin_id: 'pin1', pin } });
      else await this.qmi().call(key, { info: { pin_id: 'pin', pin } });
    } catch (e) {
      if (isDuocellError(e, 'DC_QMI_RESULT') && (e.detail.qmiError === QMI_INCORRECT_PIN || e.detail.qmiError === QMI_PIN_BLOCKED)) {
        this.pins.reject(pin);
        const tlvs = e.detail.tlvs as readonly Tlv[] | undefined;
        let left: number | undefined;
        try {
          left = tlvs === undefined ? undefined : decodePinRetries(key, tlvs).verifyRetries;
        } catch {
          left = undefined; // the verdict stands; only the count is unreadable
        }
        throw new DuocellError('DC_MODEM_PIN_WRONG', `the SIM rejected the configured PIN (${left ?? '?'} attempts left)`, { origin: 'device', cause: e, retries: left });
      }
      throw e;
    }
  }
}
