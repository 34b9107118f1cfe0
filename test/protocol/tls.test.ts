import t from 'tap';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import { ConfigError } from '../../src/errors.ts';
import { TlsContextHolder, loadTlsFiles, secureContextFrom } from '../../src/protocol/tls.ts';

const dir = new URL('../../fixtures/tls/', import.meta.url).pathname;
const cert = readFileSync(join(dir, 'localhost.crt'));
const key = readFileSync(join(dir, 'localhost.key'));

t.test('PEM material, a SecureContext or a holder are accepted', async (t) => {
  const context = secureContextFrom({ cert, key });
  t.ok(context.context);
  const ready = createSecureContext({ cert, key });
  t.equal(secureContextFrom(ready), ready, 'a SecureContext is used as it is');
  const holder = TlsContextHolder.from({ cert, key });
  t.equal(TlsContextHolder.from(holder), holder);
});

t.test('bad material is a ConfigError naming tls; the holder keeps the old context', async (t) => {
  t.throws(() => secureContextFrom({ cert: 'not a cert', key: 'nor a key' }), ConfigError);
  const other = readFileSync(join(dir, 'selfsigned.key'));
  const mismatch = (() => {
    try {
      secureContextFrom({ cert, key: other });
    } catch (err) {
      return err;
    }
    return undefined;
  })();
  t.ok(mismatch instanceof ConfigError && mismatch.key === 'tls', 'a key that does not match');
  const holder = new TlsContextHolder({ cert, key });
  const before = holder.current;
  t.throws(() => holder.update({ cert: 'x', key: 'y' }), ConfigError);
  t.equal(holder.current, before);
});

t.test('files are read through the injected reader; reload swaps the context', async (t) => {
  const files = { certFile: join(dir, 'localhost.crt'), keyFile: join(dir, 'localhost.key'), caFile: join(dir, 'ca.crt') };
  const read: string[] = [];
  const material = await loadTlsFiles(files, async (path) => {
    read.push(path);
    return readFile(path);
  });
  t.same(read.sort(), [files.caFile, files.certFile, files.keyFile].sort());
  t.ok(material.ca);
  const holder = new TlsContextHolder(material);
  const before = holder.current;
  await holder.reload({ certFile: join(dir, 'selfsigned.crt'), keyFile: join(dir, 'selfsigned.key') }, readFile);
  t.not(holder.current, before);
  await t.rejects(loadTlsFiles({ certFile: join(dir, 'missing.crt'), keyFile: files.keyFile }, readFile), {
    name: 'ConfigError',
    key: 'tls.cert',
    message: /missing\.crt: ENOENT/,
  });
});
