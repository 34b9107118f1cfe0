/** The POP3 front-end's public surface (re-exported by src/index.ts). */
export { createPop3Server, Pop3Server } from './server.js';
export type { Pop3ServerOptions, Pop3ListenOptions } from './server.js';
export { DEFAULT_POP3_LIMITS } from './config.js';
export type { Pop3Limits, Pop3SessionConfig } from './config.js';
export type {
  Pop3ServerEvents,
  ConnectEvent,
  CommandEvent,
  LoginEvent,
  LoginFailedEvent,
  RetrieveEvent,
  DeleteEvent,
  SessionSummary,
  SessionEndReason,
} from './events.js';
export { toPop3Reply } from './replies.js';
