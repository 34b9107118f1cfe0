import t from 'tap';
import { PassThrough } from 'node:stream';
import { InspectedContent } from '../../src/smtp/content.js';
import { DataInspector } from '../../src/smtp/data-inspector.js';

const strict = (): DataInspector => new DataInspector({ strictLineEnds: true, maxBytes: 1000 });

t.test('passes every chunk through, once', async (t) => {
  const source = new PassThrough();
  const content = new InspectedContent(source, strict());
  source.end('a\r\nb\r\n');
  const chunks: Buffer[] = [];
  for await (const c of content) chunks.push(c);
  t.equal(Buffer.concat(chunks).toString(), 'a\r\nb\r\n');
  t.throws(() => content[Symbol.asyncIterator](), /only once/);
  await content.drain();
  t.equal(content.sourceError, undefined);
});

t.test('a consumer that stops early leaves the source alive; drain inspects the rest', async (t) => {
  const source = new PassThrough();
  const inspector = strict();
  const content = new InspectedContent(source, inspector);
  source.write('Subject: x\r\n\r\n');
  for await (const _c of content) break;
  t.notOk(source.destroyed, 'smtp-server would answer early if its stream were destroyed');
  source.write('fine\r\n');
  source.end('then\n.\nMAIL FROM:<evil@x>\r\n');
  await content.drain();
  t.equal(inspector.failure?.enhancedCode, '5.6.0', 'a fake end marker in the unread tail is still found');
  t.ok(source.readableEnded);
});

t.test('a violation stops the consumer with the reply', async (t) => {
  const source = new PassThrough();
  const inspector = strict();
  const content = new InspectedContent(source, inspector);
  source.write('a\r.\r');
  const reading = (async () => {
    for await (const _c of content) {
      // consume
    }
  })();
  const err = await reading.then(
    () => undefined,
    (e: unknown) => e,
  );
  t.equal((err as { replyCode?: number } | undefined)?.replyCode, 550);
  source.end('rest\r\n');
  await content.drain();
  t.equal(content.sourceError, undefined, 'not a source error');
  t.ok(source.readableEnded, 'drained to the end');
});

t.test('a source that fails (client gone) is reported, drain does not hang', async (t) => {
  const source = new PassThrough();
  const content = new InspectedContent(source, strict());
  source.write('partial');
  const reading = (async () => {
    for await (const _c of content) {
      // consume
    }
  })();
  setImmediate(() => source.destroy(new Error('Connection closed')));
  await t.rejects(reading, /Connection closed/);
  await content.drain();
  t.match(content.sourceError, /Connection closed/);
});
