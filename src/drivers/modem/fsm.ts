import { logger } from '../../core/logger.js';

/**
 * The modem's life as a state table (after openwrt/uqmi's uqmid/modem_fsm.c, where each state
 * lists the events it takes and what it does on entry). Pure data plus a small runner; the
 * manager (manager.ts) supplies the entry activities by name.
 *
 *     absent ─start─► probing ─sim-locked─► sim-locked ─pin-accepted─┐
 *        ▲              │ └────sim-ready──────────────────────► sim-ready ─online─► searching
 *        │              └─probe-failed─► absent (back-off)                            │ ▲
 *        │                                                                  registered │ │ deregistered
 *        │                                                                            ▼ │
 *        │                      connected ◄─connected─ connecting ◄─connect─ registered
 *        │                          └────────dropped────────┴─connect-failed──► registered (back-off)
 *        └──────── port-lost / stop (any state but absent)
 *
 * An entry activity runs when its state is entered and runs again, as a poll, for as long as
 * the state holds without firing an event (searching, connected, a parked sim-locked). An event
 * a state does not take is logged and ignored: it never throws, and the state stays.
 */

export const MODEM_STATES = ['absent', 'probing', 'sim-locked', 'sim-ready', 'searching', 'registered', 'connecting', 'connected'] as const;
export type ModemState = (typeof MODEM_STATES)[number];

export const MODEM_EVENTS = [
  'start',
  'probe-failed',
  'sim-locked',
  'sim-ready',
  'pin-accepted',
  'online',
  'registered',
  'deregistered',
  'connect',
  'connected',
  'connect-failed',
  'dropped',
  'port-lost',
  'stop',
] as const;
export type ModemEvent = (typeof MODEM_EVENTS)[number];

/** What a state does on entry (the manager has one activity of each name). */
export type EntryActivity =
  | 'wait-then-probe'
  | 'probe-ports-and-sim'
  | 'unlock-sim'
  | 'radio-online'
  | 'poll-registration'
  | 'wait-then-connect'
  | 'start-data-session'
  | 'watch-session';

export interface StateSpec {
  /** The activity run on entry (and again while the state holds). */
  readonly entry: EntryActivity;
  /** In words, for the log, `duocell modem` and the docs. */
  readonly does: string;
  /** The events this state takes, and where each leads. */
  readonly on: Readonly<Partial<Record<ModemEvent, ModemState>>>;
}

const LEAVE = { 'port-lost': 'absent', stop: 'absent' } as const;

export const MODEM_FSM: Readonly<Record<ModemState, StateSpec>> = {
  absent: {
    entry: 'wait-then-probe',
    does: 'no modem: wait out the back-off after a failure, then start probing',
    on: { start: 'probing' },
  },
  probing: {
    entry: 'probe-ports-and-sim',
    does: 'open the candidate ports, find QMI (and the optional AT port), read the device, ask the SIM whether it needs a PIN',
    on: { 'sim-locked': 'sim-locked', 'sim-ready': 'sim-ready', 'probe-failed': 'absent', ...LEAVE },
  },
  'sim-locked': {
    entry: 'unlock-sim',
    does: 'try the configured PIN when it is safe; otherwise park until a new PIN is given',
    on: { 'pin-accepted': 'sim-ready', 'sim-locked': 'sim-locked', ...LEAVE },
  },
  'sim-ready': {
    entry: 'radio-online',
    does: 'radio online, NAS indications on, link framing agreed (WDA)',
    on: { online: 'searching', 'sim-locked': 'sim-locked', ...LEAVE },
  },
  searching: {
    entry: 'poll-registration',
    does: 'poll the serving system until registered (indications and URCs act at once)',
    on: { registered: 'registered', ...LEAVE },
  },
  registered: {
    entry: 'wait-then-connect',
    does: 'wait out the back-off after a failed session, then start the data session',
    on: { connect: 'connecting', deregistered: 'searching', ...LEAVE },
  },
  connecting: {
    entry: 'start-data-session',
    does: 'start the data session, read its settings, configure the data interface',
    on: { connected: 'connected', 'connect-failed': 'registered', deregistered: 'searching', ...LEAVE },
  },
  connected: {
    entry: 'watch-session',
    does: 'watch registration and the session (indications at once, polls as a fall-back); tear down on loss',
    on: { dropped: 'registered', deregistered: 'searching', ...LEAVE },
  },
};

/** state → event → next state, derived from the table. */
export const TRANSITIONS: Readonly<Record<ModemState, Readonly<Partial<Record<ModemEvent, ModemState>>>>> = Object.fromEntries(
  MODEM_STATES.map((s) => [s, MODEM_FSM[s].on]),
) as Record<ModemState, Partial<Record<ModemEvent, ModemState>>>;

/** The events a state takes. */
export function acceptedEvents(state: ModemState): ModemEvent[] {
  return MODEM_EVENTS.filter((e) => MODEM_FSM[state].on[e] !== undefined);
}

export interface Transition {
  readonly previous: ModemState;
  readonly state: ModemState;
  readonly event: ModemEvent;
}

const log = logger('duocell:modem:fsm');

/**
 * The runner: holds the current state and applies events through the table. `fire` returns the
 * transition, or undefined (logged at warn with the state and the event) for an event the
 * current state does not take.
 */
export class ModemFsm {
  #state: ModemState;
  /** Events refused so far (for tests and diagnostics). */
  ignored = 0;

  constructor(initial: ModemState = 'absent') {
    this.#state = initial;
  }

  get state(): ModemState {
    return this.#state;
  }

  get spec(): StateSpec {
    return MODEM_FSM[this.#state];
  }

  accepts(event: ModemEvent): boolean {
    return MODEM_FSM[this.#state].on[event] !== undefined;
  }

  fire(event: ModemEvent): Transition | undefined {
    const next = MODEM_FSM[this.#state].on[event];
    if (next === undefined) {
      this.ignored++;
      log.warn({ state: this.#state, event, accepted: acceptedEvents(this.#state) }, `modem: event ${event} ignored in state ${this.#state}`);
      return undefined;
    }
    const previous = this.#state;
    this.#state = next;
    return { previous, state: next, event };
  }
}
