/**
 * `maildird serve`: load the config, check what must exist, open the store
 * (which rolls leftover batch journals forward), load and watch the users
 * file and the aliases file, start the front-ends that exist, report each
 * listener, and on SIGINT/SIGTERM close everything in order and exit 0.
 */
import cluster from 'node:cluster';
import { readFile } from 'node:fs/promises';
import type { Argv, CommandModule } from 'yargs';
import { LISTENER_NAMES, formatAddress, type Config, type ListenAddress, type ListenerName } from '../../config/config.js';
import { loadConfig, type FlagValues } from '../../config/load.js';
import { ConfigError } from '../../errors.js';
import { createLogger, type Logger } from '../../log/logger.js';
import { PrettyDestination } from '../../log/pretty.js';
import { loadTlsFiles, TlsContextHolder } from '../../protocol/tls.js';
import { MaildirStore } from '../../storage/maildir/maildir-store.js';
import { storeOptionsFrom } from '../store-options.js';
import { UserDatabase } from '../../auth/user-db.js';
import { runContextOf } from '../context.js';
import { isExampleConfig, exampleLoginLines } from '../example.js';
import { EXIT } from '../exit-codes.js';
import { FRONTENDS, type BoundListener, type RunningFrontend } from '../frontends.js';
import { writeOut, type CliIo } from '../io.js';
import { requireFolder, requireReadableFile } from '../preflight.js';
import { listenForShutdown } from '../signals.js';
import { ServerMetrics } from '../../http/server-metrics.js';
import { registerProcessMetrics, threadPoolSize } from '../../http/process-metrics.js';
import { healthReport } from '../health.js';
import { listenForHangup, Reloader } from '../reload.js';
import { watchFiles, type FileWatch } from '../file-watch.js';
import { TrashSweeper } from '../trash-sweeper.js';
import { AliasesFile } from '../aliases-file.js';
import { configOptions, flagValues, type ConfigArgs } from './config-options.js';
import { SINGLE_PROCESS, type ServeRole } from '../serve-role.js';
import { PrimaryRole } from '../cluster/primary.js';
import { WorkerRole } from '../cluster/worker.js';

export const serveCommand: CommandModule<object, ConfigArgs> = {
  command: 'serve',
  describe: 'Run the server on a Maildir tree',
  builder: (yargs: Argv<object>) =>
    yargs
      .options(configOptions('serve'))
      .example('$0 serve --config maildir.example/maildird.json', 'serve the demo tree (what `npm start` runs)')
      .example('$0 serve --root /srv/mail --users /etc/maildird/passwd --pop3 110 --smtp 25', 'serve a tree on every address')
      .epilog(
        'Precedence: defaults < config file < MAILDIRD_* environment < flags. ' +
          'A listener is [HOST:]PORT (a bare PORT binds every address) or false; ' +
          'with none set anywhere, POP3 127.0.0.1:1110 and SMTP 127.0.0.1:2525 are served. ' +
          'README.md lists every configuration key.',
      ) as unknown as Argv<ConfigArgs>,
  handler: async (argv) => {
    const run = runContextOf(argv);
    run.exitCode = await serve(flagValues(argv), run.io);
  },
};

export async function serve(flags: FlagValues, io: CliIo): Promise<number> {
  // A worker of `workers` > 1 (src/cli/cluster): stopped by its primary, not by Ctrl-C.
  const worker = cluster.isWorker ? new WorkerRole() : undefined;
  // Installed first: a signal during start-up waits for start-up, then stops cleanly.
  const signals = worker?.stopSignal() ?? listenForShutdown(io.stderr);
  try {
    const config = await loadConfig({ flags, env: io.env, cwd: io.cwd });
    await checkPaths(config);
    const tls = await loadTls(config);
    const root = createLogger({ level: config.trace ? 'trace' : config.logLevel, destination: logDestination(config, io) });
    const logger = cluster.isWorker ? root.child({ worker: cluster.worker?.id }) : root;
    // Before anything logs: a broken aliases file is a one-line start-up error (78), like a bad certificate.
    const aliases =
      config.aliases === undefined ? undefined : await AliasesFile.load(config.aliases, { logger: logger.child({ component: 'aliases' }) });
    const role: ServeRole =
      worker ??
      (config.workers > 1
        ? new PrimaryRole({
            workers: config.workers,
            // One count per protocol server, as in one process: POP3 (pop3 + pop3s), each SMTP/LMTP listener.
            limits: Object.fromEntries(
              ['pop3', 'smtp', 'submission', 'smtps', 'lmtp'].map((server) => [
                server,
                { maxConnections: config.limits.maxConnections, maxConnectionsPerIp: config.limits.maxConnectionsPerIp },
              ]),
            ),
            stopTimeoutMs: config.limits.shutdownGraceSeconds * 1000 + 10_000,
          })
        : SINGLE_PROCESS);
    return await runServer(config, tls, aliases, logger, io, signals.received, role);
  } finally {
    signals.dispose();
  }
}

/** Runs until a stop signal; owns `aliases` from here (watches it, closes it). */
async function runServer(
  config: Config,
  tls: TlsContextHolder | undefined,
  aliases: AliasesFile | undefined,
  logger: Logger,
  io: CliIo,
  stopSignal: Promise<string>,
  role: ServeRole,
): Promise<number> {
  // Start-up self-check, storage part: leftover journals rolled forward, stale tmp files swept.
  const store = await MaildirStore.open({
    ...storeOptionsFrom(config),
    // Once per tree, before any session: in the primary when there are workers.
    sweepTmpAtStart: role.recoversAtStart,
    recoverAtStart: role.recoversAtStart,
    logger: logger.child({ component: 'store' }),
  });
  const running: RunningFrontend[] = [];
  let users: UserDatabase | undefined;
  let stopHangup: (() => void) | undefined;
  let tlsWatch: FileWatch | undefined;
  let sweeper: TrashSweeper | undefined;
  let exitCode: number = EXIT.ok;
  const metrics = new ServerMetrics();
  metrics.addFsyncSource(() => store.stats().fsyncs);
  const processMetrics = registerProcessMetrics(metrics.registry, {
    threadPoolSize: threadPoolSize(process.env['UV_THREADPOOL_SIZE']),
  });
  const health = () =>
    healthReport(config.root, () => [
      ...role.remoteListeners(),
      ...running.flatMap((frontend) => frontend.bound.map((b) => ({ name: b.name, address: b.address, isUp: frontend.isListening() }))),
    ]);
  try {
    users = await UserDatabase.load({
      file: config.users,
      domains: config.domains,
      caseInsensitive: config.caseInsensitiveUsers,
      logger: logger.child({ component: 'users' }),
    });
    users.onReload((event) => metrics.reloads.inc({ what: 'users', result: event.ok ? 'ok' : 'refused' }));
    await users.watch();
    if (aliases !== undefined) {
      for (const result of ['ok', 'refused']) metrics.reloads.touch({ what: 'aliases', result });
      aliases.onReload((event) => metrics.reloads.inc({ what: 'aliases', result: event.ok ? 'ok' : 'refused' }));
      await aliases.watch();
    }
    // SIGHUP: users, aliases and certificates re-read; connections stay (src/cli/reload.ts).
    const { cert, key } = config.tls;
    const reloader = new Reloader({
      users,
      aliases,
      tls: tls === undefined || cert === undefined || key === undefined ? undefined : { holder: tls, files: { certFile: cert, keyFile: key } },
      logger,
      metrics,
    });
    stopHangup = listenForHangup(() => {
      logger.info({ signal: 'SIGHUP' }, 'reloading users, aliases and certificates');
      role.hangup();
      void reloader.reload('SIGHUP');
    });
    // A renewed certificate (certbot, acme.sh) is taken when its files change, too.
    if (tls !== undefined && cert !== undefined && key !== undefined) {
      tlsWatch = await watchFiles([cert, key], () => void reloader.reloadTls('file change'), {
        logger,
        what: 'TLS certificate',
      });
    }

    // The primary of `workers` > 1 forks its workers here and learns where they listen.
    const remote = await role.prepare({ metrics, logger });
    const claimed = new Set<ListenerName>();
    for (const frontend of FRONTENDS) {
      for (const name of frontend.listeners) claimed.add(name);
      if (!role.startsFrontend(frontend.name)) continue;
      const listeners = frontend.listeners.flatMap((name) => {
        const address = config.listeners[name];
        return address === false ? [] : [{ name, address }];
      });
      if (listeners.length === 0) continue;
      try {
        running.push(
          await frontend.start({
            config,
            store,
            users,
            aliases: aliases?.table,
            tls,
            logger,
            listeners,
            metrics,
            bound: [...remote, ...running.flatMap((started) => started.bound)],
            health,
            connectionGate: (server) => role.connectionGate(server),
            throttle: role.throttle,
            loginDelay: role.loginDelay(config.loginDelaySeconds),
          }),
        );
      } catch (err) {
        throw listenError(err, listeners);
      }
    }

    const bound = [...remote, ...running.flatMap((frontend) => frontend.bound)];
    if (role.announce(bound)) await writeOut(io.stdout, `${summaryLines(config, bound, claimed).join('\n')}\n`);
    logger.info({ listeners: bound }, 'maildird started');
    // Trash retention (trashRetentionDays; 0 keeps Trash forever): now, then hourly.
    const known = users;
    sweeper = new TrashSweeper({
      store,
      users: () => known.users(),
      retentionDays: config.trashRetentionDays,
      logger: logger.child({ component: 'trash-sweeper' }),
      onPurged: (purged) => metrics.trashPurged.inc({}, purged),
    });
    if (role.runsSweeper) sweeper.start();

    const signal = await stopSignal;
    if (!cluster.isWorker) await writeOut(io.stdout, `${signal}: stopping\n`);
    logger.info({ signal }, 'stopping');
  } finally {
    stopHangup?.();
    // The workers of a primary stop first: their sessions end while HTTP still reports them.
    await role.stopOthers();
    await tlsWatch?.close();
    await sweeper?.close();
    processMetrics.stop();
    // Reverse order of start: no new sessions, sessions end (releasing their maildrops), then the parts they used.
    const results = await Promise.allSettled(running.map((frontend) => frontend.close()));
    if (users !== undefined) results.push(...(await Promise.allSettled([users.close()])));
    if (aliases !== undefined) results.push(...(await Promise.allSettled([aliases.close()])));
    results.push(...(await Promise.allSettled([store.close()])));
    for (const result of results) {
      if (result.status === 'rejected') {
        logger.error({ err: result.reason }, 'error while stopping');
        exitCode = EXIT.ioError;
      }
    }
    logger.flush();
  }
  if (!cluster.isWorker) await writeOut(io.stdout, 'stopped\n');
  return exitCode;
}

/** Lines for stdout: where each listener is, and which configured ones have no front-end yet. */
function summaryLines(config: Config, bound: readonly BoundListener[], claimed: ReadonlySet<ListenerName>): string[] {
  const lines = [`maildird: serving ${config.root} (users ${config.users}${config.configFile ? `, config ${config.configFile}` : ''})`];
  for (const name of LISTENER_NAMES) {
    const address = config.listeners[name];
    if (address === false) continue;
    for (const listener of bound.filter((b) => b.name === name)) lines.push(`${name} ${listener.address}: listening`);
    if (!claimed.has(name)) lines.push(`${name} ${formatAddress(address)}: not built yet`);
  }
  if (isExampleConfig(config.configFile)) lines.push(...exampleLoginLines(bound, { cramMd5: config.cramMd5, apop: config.apop }));
  if (config.workers > 1) lines.push(`${config.workers} worker processes (workers); HTTP in the primary`);
  lines.push('', 'Reload the users file and the certificate with SIGHUP.', 'Stop with Ctrl-C (SIGINT) or SIGTERM.');
  return lines;
}

/** JSON lines, or pretty ones for a person at a terminal (config logFormat). */
function logDestination(config: Config, io: CliIo): CliIo['stderr'] | PrettyDestination {
  const isTty = (io.stderr as { readonly isTTY?: boolean }).isTTY === true;
  const isPretty = config.logFormat === 'pretty' || (config.logFormat === 'auto' && isTty);
  return isPretty ? new PrettyDestination(io.stderr, { colors: isTty }) : io.stderr;
}

/** What must exist before anything starts; each failure is one line naming the key. */
async function checkPaths(config: Config): Promise<void> {
  await requireFolder(config.root, 'root', true);
  await requireReadableFile(config.users, 'users', ` (create it with: maildird user add --users ${config.users} NAME)`);
  if (config.aliases !== undefined) await requireReadableFile(config.aliases, 'aliases');
}

async function loadTls(config: Config): Promise<TlsContextHolder | undefined> {
  const { cert, key } = config.tls;
  if (cert === undefined || key === undefined) return undefined;
  await requireReadableFile(cert, 'tls.cert');
  await requireReadableFile(key, 'tls.key');
  // A certificate that does not match its key is a ConfigError (78) from secureContextFrom.
  return new TlsContextHolder(await loadTlsFiles({ certFile: cert, keyFile: key }, (file) => readFile(file)));
}

/** A listener that cannot bind becomes one line naming it, not a stack trace. */
function listenError(
  err: unknown,
  listeners: readonly { readonly name: ListenerName; readonly address: ListenAddress }[],
): unknown {
  const e = err as NodeJS.ErrnoException & { port?: number; address?: string };
  if (e.code !== 'EADDRINUSE' && e.code !== 'EACCES' && e.code !== 'EADDRNOTAVAIL') return err;
  const listener =
    listeners.find((l) => (l.address.kind === 'tcp' ? l.address.port === e.port : l.address.path === e.address)) ??
    listeners[0];
  const where = listener === undefined ? `${e.address ?? ''}:${e.port ?? ''}` : formatAddress(listener.address);
  const reason =
    e.code === 'EADDRINUSE'
      ? 'address already in use'
      : e.code === 'EACCES'
        ? 'permission denied (ports below 1024 need CAP_NET_BIND_SERVICE)'
        : 'address not available on this machine';
  return new ConfigError(`listeners.${listener?.name ?? '?'} ${where}: ${reason}`, {
    key: `listeners.${listener?.name ?? ''}`,
    exitCode: EXIT.config,
    cause: err,
  });
}
