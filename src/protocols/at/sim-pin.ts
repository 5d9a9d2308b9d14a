import { ok, opt, parseError, replyLines, unq, type AtResult } from './result.js';

/** 27.007 §8.3 +CPIN and the PIN-safety decision, as non-throwing parsers (see threegpp.ts). */

// ---------------------------------------------------------------------------------------------
// +CPIN and PIN safety

/** 27.007 §8.3 <code>, plus the two vendor states Quectel/SIMCom/Sierra send while the SIM is not usable. */
export const CPIN_CODES = [
  'READY', 'SIM PIN', 'SIM PUK', 'PH-SIM PIN', 'PH-FSIM PIN', 'PH-FSIM PUK', 'SIM PIN2', 'SIM PUK2',
  'PH-NET PIN', 'PH-NET PUK', 'PH-NETSUB PIN', 'PH-NETSUB PUK', 'PH-SP PIN', 'PH-SP PUK', 'PH-CORP PIN', 'PH-CORP PUK',
  'NOT READY', 'NOT INSERTED',
] as const;
export type CpinCode = (typeof CPIN_CODES)[number];

export type SimPinKind =
  /** READY */
  | 'ready'
  /** SIM PIN: the one state in which a configured PIN may be sent */
  | 'pin'
  /** SIM PUK: blocked, needs the PUK (never sent automatically) */
  | 'puk'
  /** SIM PIN2 / SIM PUK2: only for PIN2-protected operations; the SIM itself is usable */
  | 'pin2'
  /** PH-…: a device or network personalisation lock */
  | 'device-lock'
  /** NOT READY or CME 14 (SIM busy): try again later */
  | 'not-ready'
  /** NOT INSERTED or CME 10 */
  | 'absent'
  /** CME 13 (SIM failure) or 15 (SIM wrong) */
  | 'failure';

export interface SimPinState {
  /** The code as the modem gave it, or the one its CME error stands for; absent for a SIM failure. */
  readonly code?: CpinCode;
  readonly kind: SimPinKind;
  /** 'cpin': a +CPIN line; 'cme': a +CME ERROR answered AT+CPIN?. */
  readonly via: 'cpin' | 'cme';
  readonly cme?: number;
}

function kindOf(code: CpinCode): SimPinKind {
  if (code === 'READY') return 'ready';
  if (code === 'SIM PIN') return 'pin';
  if (code === 'SIM PUK') return 'puk';
  if (code === 'SIM PIN2' || code === 'SIM PUK2') return 'pin2';
  if (code === 'NOT READY') return 'not-ready';
  if (code === 'NOT INSERTED') return 'absent';
  return 'device-lock';
}

/** 27.007 §9.2.1 CME errors that can answer AT+CPIN?, numeric or verbose. */
const CME_SIM: Readonly<Record<string, { code?: CpinCode; kind: SimPinKind; cme: number }>> = {
  '10': { code: 'NOT INSERTED', kind: 'absent', cme: 10 },
  'SIM NOT INSERTED': { code: 'NOT INSERTED', kind: 'absent', cme: 10 },
  '11': { code: 'SIM PIN', kind: 'pin', cme: 11 },
  'SIM PIN REQUIRED': { code: 'SIM PIN', kind: 'pin', cme: 11 },
  '12': { code: 'SIM PUK', kind: 'puk', cme: 12 },
  'SIM PUK REQUIRED': { code: 'SIM PUK', kind: 'puk', cme: 12 },
  '13': { kind: 'failure', cme: 13 },
  'SIM FAILURE': { kind: 'failure', cme: 13 },
  '14': { code: 'NOT READY', kind: 'not-ready', cme: 14 },
  'SIM BUSY': { code: 'NOT READY', kind: 'not-ready', cme: 14 },
  '15': { kind: 'failure', cme: 15 },
  'SIM WRONG': { kind: 'failure', cme: 15 },
};

/** `+CPIN: <code>` (also `+CPIN: "READY"`), or the SIM-related `+CME ERROR` that answered AT+CPIN?. */
export function parseCpinState(text: string): AtResult<SimPinState> {
  const C = '+CPIN';
  const ls = replyLines(text, C);
  if (!ls.ok) return ls;
  for (const l of ls.value) {
    const u = l.toUpperCase();
    if (u.startsWith('+CME ERROR:')) {
      const e = CME_SIM[unq(u.slice(11)).replace(/\s+/g, ' ')];
      if (e === undefined) return parseError(C, 'unknown-form', 'a CME error that says nothing of the SIM', l);
      return ok({ ...opt('code', e.code), kind: e.kind, via: 'cme', cme: e.cme });
    }
    if (u.startsWith('+CPIN:')) {
      const code = unq(u.slice(6)).replace(/\s+/g, ' ') as CpinCode;
      if (!(CPIN_CODES as readonly string[]).includes(code)) return parseError(C, 'unknown-form', 'not a documented <code>', l);
      return ok({ code, kind: kindOf(code), via: 'cpin' });
    }
  }
  return parseError(C, 'no-prefix', 'no +CPIN or +CME ERROR line', text);
}

export type PinDecision =
  | { readonly action: 'none' }
  | { readonly action: 'send-pin' }
  | { readonly action: 'wait'; readonly reason: string }
  | { readonly action: 'stop'; readonly code: 'DC_MODEM_SIM' | 'DC_MODEM_PIN_REQUIRED' | 'DC_MODEM_PIN_UNSAFE'; readonly reason: string };

export interface PinPolicy {
  readonly pinConfigured: boolean;
  /** PIN attempts left as the modem reported them (+CPINR, +QPINC, QMI UIM); undefined if unknown. */
  readonly retriesLeft?: number;
  /** Never use the last attempts: send only when retriesLeft ≥ this (default 2). */
  readonly minRetries?: number;
  /** Set after one PIN was sent in this SIM session: a second state of SIM PIN means it was wrong. */
  readonly alreadySent?: boolean;
}

/**
 * What to do about the SIM. PIN safety: the configured PIN is sent only in state SIM PIN, only
 * once per SIM session, and only with a known count of attempts left that is ≥ minRetries.
 * Every other state — NOT READY, NOT INSERTED, PUK, PH-locks, failures, unknown replies —
 * never leads to sending a PIN.
 */
export function pinDecision(s: SimPinState, p: PinPolicy): PinDecision {
  switch (s.kind) {
    case 'ready':
    case 'pin2':
      return { action: 'none' };
    case 'not-ready':
      return { action: 'wait', reason: 'SIM not ready (initialising or busy)' };
    case 'absent':
      return { action: 'stop', code: 'DC_MODEM_SIM', reason: 'no SIM inserted' };
    case 'failure':
      return { action: 'stop', code: 'DC_MODEM_SIM', reason: `SIM failure (CME ${s.cme ?? '?'})` };
    case 'puk':
      return { action: 'stop', code: 'DC_MODEM_SIM', reason: 'SIM blocked: needs the PUK (never sent automatically)' };
    case 'device-lock':
      return { action: 'stop', code: 'DC_MODEM_SIM', reason: `personalisation lock ${s.code ?? ''}: not handled automatically` };
    case 'pin': {
      if (!p.pinConfigured) return { action: 'stop', code: 'DC_MODEM_PIN_REQUIRED', reason: 'the SIM needs a PIN and none is configured' };
      if (p.alreadySent) return { action: 'stop', code: 'DC_MODEM_PIN_UNSAFE', reason: 'the SIM still asks for its PIN after one was sent: not retrying' };
      const min = p.minRetries ?? 2;
      if (p.retriesLeft === undefined) return { action: 'stop', code: 'DC_MODEM_PIN_UNSAFE', reason: 'attempts left unknown: not sending the PIN' };
      if (p.retriesLeft < min) return { action: 'stop', code: 'DC_MODEM_PIN_UNSAFE', reason: `${p.retriesLeft} attempt(s) left (< ${min})` };
      return { action: 'send-pin' };
    }
  }
}
