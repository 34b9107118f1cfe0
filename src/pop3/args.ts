/**
 * Argument parsers shared by every command (STYLE.md 6, Dovecot's
 * get_msgnum()): one definition of what a message number is, with exact
 * reply texts, so no two commands disagree about an edge case.
 *
 * RFC 1939 section 3: arguments are separated by a single SPACE; message
 * numbers are decimal; numbering is fixed for the session (section 5), so
 * a deleted message keeps its number and is refused by name.
 */
import { Pop3Error, type Pop3ResponseCode } from '../errors.js';
import type { MessageInfo } from '../storage/store.js';
import type { TransactionState } from './state.js';

/**
 * A malformed command (bad or missing argument): counts toward the
 * bad-command limit, unlike a well-formed request that cannot be met.
 */
export class Pop3SyntaxError extends Pop3Error {
  constructor(text: string, code?: Pop3ResponseCode) {
    super(text, code);
  }
}

const DIGITS = /^[0-9]+$/;

/** Split arguments on single spaces, ignoring trailing spaces (hand-typed sessions). */
export function words(args: string): string[] {
  const trimmed = args.replace(/[ \t]+$/, '');
  return trimmed === '' ? [] : trimmed.split(' ');
}

export function noArguments(args: string): void {
  if (words(args).length > 0) throw new Pop3SyntaxError('This command takes no arguments');
}

export interface MessageRef {
  /** The session's message number (1-based, RFC 1939). */
  readonly number: number;
  /** Index into maildrop.messages and the deleted/retrieved sets. */
  readonly index: number;
  readonly info: MessageInfo;
}

/**
 * Parse one message-number argument: missing, not a plain decimal number
 * (signs, spaces, letters, `1x`), zero or past the end, and deleted are each
 * refused with their own text.
 */
export function messageNumber(state: TransactionState, arg: string | undefined): MessageRef {
  if (arg === undefined || arg === '') {
    throw new Pop3SyntaxError(arg === undefined ? 'Message number required' : 'Invalid message number');
  }
  if (!DIGITS.test(arg)) throw new Pop3SyntaxError('Invalid message number');
  const count = state.maildrop.messages.length;
  // More digits than any maildrop can have: out of range, not "invalid".
  const number = arg.length > 15 ? Number.MAX_SAFE_INTEGER : Number(arg);
  const info = number >= 1 ? state.maildrop.messages[number - 1] : undefined;
  if (info === undefined) {
    throw new Pop3Error(`No such message, only ${count} message${count === 1 ? '' : 's'} in maildrop`);
  }
  const index = number - 1;
  if (state.deleted.has(index)) throw new Pop3Error(`Message ${number} already deleted`);
  return { number, index, info };
}

/** `[msg]` for LIST and UIDL: undefined when absent. */
export function optionalMessageNumber(state: TransactionState, args: string): MessageRef | undefined {
  const list = words(args);
  if (list.length > 1) throw new Pop3SyntaxError('Too many arguments');
  return list.length === 0 ? undefined : messageNumber(state, list[0]);
}

/** Exactly one message number (RETR, DELE). */
export function singleMessageNumber(state: TransactionState, args: string): MessageRef {
  const list = words(args);
  if (list.length > 1) throw new Pop3SyntaxError('Too many arguments');
  return messageNumber(state, list[0]);
}

/** A non-negative decimal count (TOP's line count, RFC 1939 section 7). */
export function lineCount(arg: string | undefined): number {
  if (arg === undefined) throw new Pop3SyntaxError('Number of lines required');
  if (!DIGITS.test(arg)) throw new Pop3SyntaxError('Invalid number of lines');
  // Anything past the largest message is "all lines".
  return arg.length > 15 ? Number.MAX_SAFE_INTEGER : Number(arg);
}

/** True when a string is plain ASCII (USER/PASS before the UTF8 command, RFC 6856 section 2). */
export function isAscii(text: string): boolean {
  // eslint-disable-next-line no-control-regex
  return /^[\x00-\x7f]*$/.test(text);
}
