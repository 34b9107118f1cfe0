/**
 * The Maildir store's options as a configuration gives them, for every
 * command that opens the store (serve, deliver), so a new storage key is
 * wired in one place.
 */
import type { Config } from '../config/config.js';
import type { MaildirStoreOptions } from '../storage/maildir/maildir-store.js';

export function storeOptionsFrom(config: Config): MaildirStoreOptions {
  return {
    root: config.root,
    layout: config.layout,
    defaultDomain: config.domains[0],
    deletionMode: config.deletionMode,
    infoSeparator: config.infoSeparator,
    uidlMode: config.uidl,
    defaultQuotaBytes: config.quota.bytes,
    defaultQuotaMessages: config.quota.messages,
  };
}
