import { DuocellError } from '../../core/errors.js';

/**
 * The AT pass-through of `duocell modem at '…'` (what `mmcli --command` is on a desktop): one
 * command line, checked here, then sent by the running service through its own AT queue (the
 * manager's atCommand), so there is never a second writer on the port.
 *
 * Refused, with DC_MODEM_AT_REFUSED (HTTP 400), and why:
 *  - not starting with AT, longer than MAX_PASSTHROUGH_LENGTH, or holding control characters
 *    (a CR/LF would smuggle a second command; Ctrl-Z would end an SMS body; ESC aborts);
 *  - commands that break the session the service keeps, or its AT dialogue:
 *      ATE1 / ATV0 / ATQ1 / AT&F / ATZ   echo, verbose or quiet result codes, factory reset:
 *                                        the framer would misread every later reply
 *      AT+CMEE=0                         errors become bare ERROR (the PIN logic needs CME codes)
 *      AT+CFUN (set), AT+CPOF, AT+QPOWD, AT!RESET, AT+CRESET, AT#REBOOT, AT+QRST
 *                                        radio off / reboot: the data session dies under the service
 *      AT+CPIN= / AT+CPIN2= / AT+CLCK= / AT+CPWD=   PIN entry and lock changes: PIN safety is the
 *                                        service's (a wrong PIN typed here could use the last attempt)
 *      AT+CGACT=, AT+CGATT=, AT+CGDCONT=, AT+QNETDEVCTL=, AT+CGDATA, ATD, ATH, ATO, +++
 *                                        the data session and its context are the service's
 *      AT+COPS= (set), AT+CEREG=, AT+CREG=, AT+CGREG=, AT+C5GREG=
 *                                        registration and the URCs the service relies on
 *      AT+QCFG= / AT+QCFG="usbnet" etc., AT!ENTERCND, AT+IPR, AT&W, AT+CSCS=
 *                                        persistent configuration, port speed, character set
 *  - queries (`?`, `=?`) of any of these are allowed: they change nothing.
 * The timeout is bounded (1–30 s, default 5 s); a reply is returned as its lines and final
 * result (an ERROR final is a reply, not a failure of the pass-through).
 */

export const MAX_PASSTHROUGH_LENGTH = 256;
export const PASSTHROUGH_TIMEOUT = { default: 5000, min: 1000, max: 30_000 } as const;

/** Anchored on the upper-cased command without its leading "AT"; only set/action forms. */
const DENY: readonly [RegExp, string][] = [
  [/^(E1|V0|Q1|&F|Z)/, 'changes echo/result-code format or resets the modem'],
  [/^\+CMEE=0/, 'turns off the CME error codes the service relies on'],
  [/^(\+CFUN=|\+CPOF|\+QPOWD|!RESET|\+CRESET|#REBOOT|\+QRST|#SHDN)/, 'turns the radio off or reboots the modem'],
  [/^(\+CPIN=|\+CPIN2=|\+CLCK=|\+CPWD=)/, 'PIN entry and SIM lock changes are the service\'s (PIN safety)'],
  [/^(\+CGACT=|\+CGATT=|\+CGDCONT=|\+QNETDEVCTL=|\+CGDATA|D|H|O|\+\+\+|\$QCRMCALL=|!SCACT=|#ECM=|\+QIACT=|\+QIDEACT=)/, 'the data session and its PDP context are the service\'s'],
  [/^(\+COPS=|\+CEREG=|\+CREG=|\+CGREG=|\+C5GREG=)/, 'registration and its URCs are the service\'s'],
  [/^(\+QCFG=|!ENTERCND|\+IPR=|&W|\+CSCS=|\+QPRTPARA|!USBCOMP=)/, 'persistent configuration, port speed or character set'],
];

/** Checks one pass-through command; returns it trimmed, or throws DC_MODEM_AT_REFUSED. Pure. */
export function checkPassthrough(raw: unknown): string {
  if (typeof raw !== 'string') throw new DuocellError('DC_MODEM_AT_REFUSED', 'the command must be a string');
  const cmd = raw.trim();
  if (cmd.length === 0) throw new DuocellError('DC_MODEM_AT_REFUSED', 'empty command');
  if (cmd.length > MAX_PASSTHROUGH_LENGTH) throw new DuocellError('DC_MODEM_AT_REFUSED', `command longer than ${MAX_PASSTHROUGH_LENGTH} characters`);
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f-\uffff]/.test(cmd)) throw new DuocellError('DC_MODEM_AT_REFUSED', 'control or non-ASCII characters (one command line only, no CR/LF, Ctrl-Z or ESC)');
  if (!/^AT/i.test(cmd)) throw new DuocellError('DC_MODEM_AT_REFUSED', 'not an AT command (must start with AT)');
  const body = cmd.slice(2).toUpperCase();
  if (body.includes(';')) throw new DuocellError('DC_MODEM_AT_REFUSED', 'one command per line (no ";" concatenation)');
  const isQuery = body.endsWith('?');
  if (!isQuery) for (const [re, why] of DENY) if (re.test(body)) throw new DuocellError('DC_MODEM_AT_REFUSED', `${cmd.slice(0, 40)}: refused, ${why}`);
  return cmd;
}

/** The timeout of one pass-through command: a number of ms within bounds, or the default. */
export function passthroughTimeout(raw: unknown): number {
  if (raw === undefined) return PASSTHROUGH_TIMEOUT.default;
  if (typeof raw !== 'number' || !Number.isInteger(raw) || raw < PASSTHROUGH_TIMEOUT.min || raw > PASSTHROUGH_TIMEOUT.max)
    throw new DuocellError('DC_MODEM_AT_REFUSED', `timeoutMs must be an integer ${PASSTHROUGH_TIMEOUT.min}..${PASSTHROUGH_TIMEOUT.max}`);
  return raw;
}
