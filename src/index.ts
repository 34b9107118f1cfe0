/**
 * maildird as a library. The front-ends take a MailStore and an
 * Authenticator (both ports), so a program can serve its own storage or user
 * database, as the Indy and Clever components let their users plug storage
 * in through events. `createServer` puts POP3 and SMTP on one store: a
 * message accepted over SMTP is readable over POP3 at once, with no glue.
 */
import { createPop3Server, type Pop3Server, type Pop3ServerOptions } from './pop3/server.js';
import { createSmtpServer, type SmtpServer, type SmtpServerOptions } from './smtp/server.js';
import type { Authenticator } from './auth/authenticator.js';
import type { MailStore } from './storage/store.js';
import type { Logger } from './log/logger.js';
import { LoginThrottle } from './auth/throttle.js';

// The ports, and the errors every implementation speaks in.
export type {
  MailStore,
  Maildrop,
  MailUser,
  MessageInfo,
  OpenMessageOptions,
  MaildropUpdate,
  CommitResult,
  DeliveryRequest,
  DeliveryOutcome,
  StoreStats,
  TrashPurgeResult,
} from './storage/store.js';
export type { Authenticator } from './auth/authenticator.js';
export {
  StorageError,
  Pop3Error,
  SmtpReplyError,
  ConfigError,
  isStorageError,
  type StorageErrorKind,
  type Pop3ResponseCode,
} from './errors.js';

// The stores.
export { MaildirStore, type MaildirStoreOptions } from './storage/maildir/maildir-store.js';
export { MemoryStore, type MemoryStoreOptions } from './storage/memory-store.js';

// Users.
export { UserDatabase, type UserDatabaseOptions, type UserDatabaseLoadOptions } from './auth/user-db.js';
export { hashPassword, verifyPassword } from './auth/password.js';
export { LoginThrottle } from './auth/throttle.js';

// Front-ends.
export * from './pop3/index.js';
export { createSmtpServer, SmtpServer, DEFAULT_SMTP_LIMITS, type SmtpServerOptions, type SmtpLimits } from './smtp/server.js';
export type {
  MailFromHook,
  RcptToHook,
  MessageHandler,
  ReceivedMessage,
  HookDecision,
  RcptDecision,
  SessionInfo,
} from './smtp/hooks.js';
export type {
  SmtpServerEvents,
  SmtpConnectEvent,
  SmtpCommandEvent,
  SmtpLoginEvent,
  SmtpLoginFailedEvent,
  SmtpMessageEvent,
  SmtpSessionEndEvent,
} from './smtp/events.js';
export { RecipientPolicy } from './smtp/recipient-policy.js';
export { AliasTable, parseAliases } from './smtp/aliases.js';
export { deliverLocal, type LocalDeliveryOptions, type LocalDeliveryResult } from './smtp/local-delivery.js';
export { createLogger, silentLogger, type Logger } from './log/logger.js';

type FrontEndOptions<T> = Omit<T, 'store' | 'users' | 'logger' | 'throttle'>;

export interface ServerOptions {
  readonly store: MailStore;
  readonly users: Authenticator;
  readonly logger?: Logger | undefined;
  /** POP3 options (default: POP3 on, with its defaults); false turns POP3 off. */
  readonly pop3?: FrontEndOptions<Pop3ServerOptions> | false | undefined;
  /** SMTP options (default: SMTP on, with its defaults); false turns SMTP off. */
  readonly smtp?: FrontEndOptions<SmtpServerOptions> | false | undefined;
}

export interface MailServer {
  readonly pop3: Pop3Server | undefined;
  readonly smtp: SmtpServer | undefined;
  /** Stop both front-ends: no new connections, current commands finish, sessions end without UPDATE. */
  close(): Promise<void>;
}

/**
 * POP3 and SMTP on one store and one user database, sharing one failed-login
 * budget per address and user. Call `pop3.listen(...)` and
 * `smtp.listen(...)` to open listeners.
 */
export function createServer(options: ServerOptions): MailServer {
  const shared = {
    store: options.store,
    users: options.users,
    throttle: new LoginThrottle(),
    ...(options.logger === undefined ? {} : { logger: options.logger }),
  };
  const pop3 = options.pop3 === false ? undefined : createPop3Server({ ...options.pop3, ...shared });
  const smtp = options.smtp === false ? undefined : createSmtpServer({ ...options.smtp, ...shared });
  return {
    pop3,
    smtp,
    async close() {
      await Promise.all([pop3?.close(), smtp?.close()]);
    },
  };
}
