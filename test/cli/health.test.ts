/**
 * /healthz of a `maildird serve` child: 200 with every check while the
 * root is writable and the listeners are up; 503 naming the store once the
 * root is not a writable folder. Permission bits do not stop root (tests
 * may run as root), so the root is replaced by a file: writing under it
 * fails with ENOTDIR for anyone.
 */
import t from 'tap';
import { readdirSync, renameSync, writeFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { healthReport, probeWritable } from '../../src/cli/health.js';
import { threadPoolSize } from '../../src/http/process-metrics.js';
import { ServeProcess, portOf } from '../helpers/cli-run.js';
import { fetchFrom } from '../helpers/http-client.js';

t.test('probeWritable leaves nothing behind and names what failed', async (t) => {
  const dir = t.testdir({ root: {}, file: 'not a folder' });
  const root = path.join(dir, 'root');
  t.same(await probeWritable(root), { ok: true, detail: `${root} is writable` });
  t.same(readdirSync(root), [], 'the probe file is removed');
  const file = await probeWritable(path.join(dir, 'file'));
  t.equal(file.ok, false);
  t.match(file.detail, /is not writable \(ENOTDIR\)$/);
  t.match((await probeWritable(path.join(dir, 'missing'))).detail, /\(ENOENT\)$/);

  const report = await healthReport(root, () => [
    { name: 'pop3', address: '127.0.0.1:1110', isUp: true },
    { name: 'smtp', address: '127.0.0.1:2525', isUp: false },
  ]);
  t.equal(report.ok, false, 'one listener down fails the whole');
  t.same(report.checks.map((c) => `${c.name}: ${c.ok}`), ['store: true', 'listener pop3: true', 'listener smtp: false']);
});

t.test('serve: /healthz 200, then 503 when the root is not writable, then 200 again', async (t) => {
  const dir = t.testdir({
    'maildird.json': JSON.stringify({ listeners: { pop3: '127.0.0.1:0', smtp: '127.0.0.1:0', http: '127.0.0.1:0' } }),
    passwd: 'alice:{PLAIN}wonder\n',
    mail: { alice: { cur: {}, new: {}, tmp: {} } },
  });
  const serve = ServeProcess.start([], { cwd: dir });
  t.teardown(() => serve.stop('SIGKILL'));
  const lines = await serve.ready();
  const http = portOf(lines.find((l) => l.name === 'http')?.address ?? ':0');
  const root = path.join(dir, 'mail');

  const healthy = await fetchFrom(http, 'GET', '/healthz');
  t.equal(healthy.status, 200, healthy.body);
  const body = JSON.parse(healthy.body) as { status: string; checks: { name: string; ok: boolean; detail: string }[] };
  t.equal(body.status, 'ok');
  t.same(
    body.checks.map((c) => `${c.name} ${c.ok}`),
    ['store true', 'listener pop3 true', 'listener smtp true', 'listener http true'],
  );

  renameSync(root, `${root}.moved`);
  writeFileSync(root, 'the root is a file now\n');
  const failing = await fetchFrom(http, 'GET', '/healthz');
  t.equal(failing.status, 503);
  const failed = JSON.parse(failing.body) as typeof body;
  t.equal(failed.status, 'fail');
  t.match(failed.checks.find((c) => c.name === 'store'), { ok: false, detail: /not writable \(ENOTDIR\)/ });
  t.ok(failed.checks.filter((c) => c.name.startsWith('listener')).every((c) => c.ok), 'the listeners are still up');

  rmSync(root);
  renameSync(`${root}.moved`, root);
  t.equal((await fetchFrom(http, 'GET', '/healthz')).status, 200, 'healthy again once the root is back');
  t.same(readdirSync(root), ['alice'], 'no probe files left in the root');
  t.equal((await serve.stop()).code, 0);
});

t.test('bin/maildird starts libuv with 8 pool threads unless UV_THREADPOOL_SIZE says otherwise (/metrics shows it)', async (t) => {
  const dir = t.testdir({
    'maildird.json': JSON.stringify({ listeners: { smtp: '127.0.0.1:0', http: '127.0.0.1:0' } }),
    passwd: 'alice:{PLAIN}wonder\n',
    mail: {},
  });
  for (const [env, expected] of [[{}, 8], [{ UV_THREADPOOL_SIZE: '3' }, 3]] as const) {
    const serve = ServeProcess.start([], { cwd: dir, env });
    t.teardown(() => serve.stop('SIGKILL'));
    const lines = await serve.ready();
    const http = portOf(lines.find((l) => l.name === 'http')?.address ?? ':0');
    const metrics = await fetchFrom(http, 'GET', '/metrics');
    t.match(metrics.body, new RegExp(`^nodejs_uv_threadpool_size ${expected}$`, 'm'), JSON.stringify(env));
    await serve.stop();
  }
});

t.test('threadPoolSize reads UV_THREADPOOL_SIZE as libuv does', async (t) => {
  t.equal(threadPoolSize(undefined), 4);
  t.equal(threadPoolSize('16'), 16);
  t.equal(threadPoolSize('0'), 1);
  t.equal(threadPoolSize('lots'), 1);
  t.equal(threadPoolSize('5000'), 1024);
});
