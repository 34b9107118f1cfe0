/**
 * Exit codes, from BSD sysexits.h where one fits, so scripts (and systemd's
 * RestartPreventExitStatus) can tell a usage mistake from a broken config
 * from a missing file.
 */
export const EXIT = {
  ok: 0,
  /** `maildird check` found problems in the tree. */
  problemsFound: 1,
  /** EX_USAGE: unknown flag, missing argument, bad flag value. */
  usage: 64,
  /** EX_DATAERR: bad input data (a password that does not match its confirmation, an invalid user name). */
  dataError: 65,
  /** EX_NOINPUT: a file or folder that must exist does not, or cannot be read. */
  noInput: 66,
  /** EX_SOFTWARE: a bug; the message says what failed. */
  software: 70,
  /** EX_IOERR: a read or write failed. */
  ioError: 74,
  /** EX_TEMPFAIL: try again later (a maildrop or file is in use). */
  tempFail: 75,
  /** EX_CONFIG: the configuration is invalid. */
  config: 78,
  /** A second SIGINT/SIGTERM cut the graceful shutdown short (128 + SIGINT, as shells report it). */
  forcedShutdown: 130,
} as const;
