/**
 * The Maildir adapter's public surface: the store, its options, and the
 * pieces the CLI (`maildird check`, `deliver`) and library users need.
 */
export {
  MaildirStore,
  type MaildirStoreOptions,
  type DeletionMode,
  type InfoSeparator,
  type UidlMode,
} from './maildir-store.js';
export { MaildirMaildrop } from './maildrop.js';
export { checkTree, type CheckOptions, type CheckReport, type CheckedUser, type CheckIssue } from './check.js';
export {
  parseMaildirName,
  uidlFromBase,
  hashedUidl,
  flatUidl,
  deliveredName,
  withSeenFlag,
  UniqueNameGenerator,
  type ParsedMaildirName,
} from './filename.js';
export { resolveUserDir, ensureInsideRoot, detectForm, maildirPaths, type MaildirPaths, type FolderForm } from './layout.js';
export { scanMaildrop, type ScanEntry, type Listing, type ScanOptions, type ScanResult } from './scan.js';
export { ListingCache } from './listing-cache.js';
export { parseDovecotUidlist, dovecotUidl, DovecotUidlistReader, type DovecotUidlist } from './dovecot-uidlist.js';
export { nodeFs, type FsLayer } from './fs.js';
