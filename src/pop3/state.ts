/**
 * POP3 session state (RFC 1939 section 3) as a discriminated union: what
 * exists only in one state lives only in that variant, so a TRANSACTION
 * command gets the maildrop without checks and an AUTHORIZATION command
 * cannot reach one. Changes of state go through Pop3Session.transition(),
 * which logs them.
 */
import type { Maildrop, MailUser } from '../storage/store.js';

export interface AuthorizationState {
  readonly name: 'AUTHORIZATION';
  /** The name a USER command gave, waiting for PASS (RFC 1939 section 7); cleared by a failed PASS. */
  pendingUser: string | undefined;
}

export interface TransactionState {
  readonly name: 'TRANSACTION';
  readonly user: MailUser;
  /** Locked snapshot; message number n is `maildrop.messages[n - 1]` for the whole session. */
  readonly maildrop: Maildrop;
  /** 0-based indexes marked by DELE (RFC 1939 section 5); RSET clears them. */
  readonly deleted: Set<number>;
  /** 0-based indexes sent whole by RETR: marked Seen at UPDATE unless deleted. */
  readonly retrieved: Set<number>;
  /** How the user logged in (`USER`, `APOP`, `SASL PLAIN`...), for logs and events. */
  readonly mechanism: string;
}

export interface UpdateState {
  readonly name: 'UPDATE';
  readonly user: MailUser;
  readonly maildrop: Maildrop;
  readonly deleted: ReadonlySet<number>;
  readonly retrieved: ReadonlySet<number>;
}

export type Pop3State = AuthorizationState | TransactionState | UpdateState;
export type StateName = Pop3State['name'];
export type StateOf<N extends StateName> = Extract<Pop3State, { readonly name: N }>;

/** The end of every exhaustive `switch (state.name)`: a new state fails to compile until handled. */
export function assertNever(value: never): never {
  throw new Error(`unexpected value: ${JSON.stringify(value)}`);
}

export function authorizationState(): AuthorizationState {
  return { name: 'AUTHORIZATION', pendingUser: undefined };
}
