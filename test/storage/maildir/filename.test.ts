import t from 'tap';
import { createHash } from 'node:crypto';
import {
  parseMaildirName,
  uidlFromBase,
  hashedUidl,
  flatUidl,
  deliveredName,
  withSeenFlag,
  UniqueNameGenerator,
  sanitizeHost,
} from '../../../src/storage/maildir/filename.js';

const sha = (b: string | Buffer) => `~${createHash('sha256').update(b).digest('hex').slice(0, 40)}`;

t.test('Dovecot names with S=, W= and :2,FLAGS', async (t) => {
  const p = parseMaildirName('1283176143.M191489P18447.mail.example.org,S=2417,W=2469:2,FRS');
  t.ok(p);
  t.equal(p?.base, '1283176143.M191489P18447.mail.example.org,S=2417,W=2469');
  t.equal(p?.separator, ':');
  t.equal(p?.info, '2,FRS');
  t.equal(p?.flags, 'FRS');
  t.equal(p?.size, 2417);
  t.equal(p?.wireSize, 2469);
  t.equal(p?.seconds, 1283176143);
  t.equal(p?.usec, 191489);
});

t.test('Dovecot V/I identifiers and Courier names', async (t) => {
  const dv = parseMaildirName('1035478339.P1234V0000000000000803I00000012M123456.host,S=10:2,');
  t.equal(dv?.seconds, 1035478339);
  t.equal(dv?.usec, 123456);
  t.equal(dv?.flags, '');
  t.equal(dv?.info, '2,');
  const courier = parseMaildirName('1035478339.M5P1234V0000000000000803I00000012_0.host,S=1024');
  t.equal(courier?.size, 1024);
  t.equal(courier?.wireSize, undefined);
  t.equal(courier?.usec, 5);
  t.equal(courier?.separator, undefined);
  t.equal(courier?.info, undefined);
  t.equal(courier?.base, courier?.name);
  const old = parseMaildirName('1035478339.1234_5.host');
  t.equal(old?.seconds, 1035478339);
  t.equal(old?.usec, undefined);
});

t.test('the ; and ! separators', async (t) => {
  const semi = parseMaildirName('1.M2P3Q4.host,S=5,W=6;2,S');
  t.equal(semi?.separator, ';');
  t.equal(semi?.base, '1.M2P3Q4.host,S=5,W=6');
  t.equal(semi?.flags, 'S');
  const bang = parseMaildirName('1.M2P3Q4.host!2,RS');
  t.equal(bang?.separator, '!');
  t.equal(bang?.flags, 'RS');
  // A separator not followed by 2, or 1, is part of the base.
  const plain = parseMaildirName('odd!name;x');
  t.equal(plain?.base, 'odd!name;x');
  t.equal(plain?.info, undefined);
  // Restricting the separators.
  const colonOnly = parseMaildirName('1.M2P3Q4.host!2,RS', [':']);
  t.equal(colonOnly?.base, '1.M2P3Q4.host!2,RS');
  const experimental = parseMaildirName('1.M2.h:1,xyz');
  t.equal(experimental?.info, '1,xyz');
  t.equal(experimental?.flags, '');
});

t.test('non-messages and odd fields', async (t) => {
  t.equal(parseMaildirName(''), undefined);
  t.equal(parseMaildirName('.keep'), undefined);
  t.equal(parseMaildirName('.nfs000123'), undefined);
  t.equal(parseMaildirName(':2,S'), undefined, 'empty base');
  const bad = parseMaildirName('1.M2.h,S=abc,W=12x');
  t.equal(bad?.size, undefined);
  t.equal(bad?.wireSize, undefined);
  const later = parseMaildirName('1.M2.h,S=x,S=7');
  t.equal(later?.size, 7, 'the first well-formed field wins');
  t.equal(parseMaildirName('msg1')?.seconds, undefined);
  t.equal(parseMaildirName('123abc')?.seconds, undefined);
  t.equal(parseMaildirName('123')?.seconds, 123);
  t.equal(parseMaildirName('1.M9999999P1.h')?.usec, undefined, 'more than 6 digits is not microseconds');
});

t.test('UIDL is the base when it is 1-70 octets of 0x21-0x7E', async (t) => {
  t.equal(uidlFromBase('1283176143.M191489P18447.host,S=1,W=2'), '1283176143.M191489P18447.host,S=1,W=2');
  const seventy = 'a'.repeat(70);
  t.equal(uidlFromBase(seventy), seventy);
  const long = 'a'.repeat(71);
  t.equal(uidlFromBase(long), sha(long));
  t.equal(uidlFromBase(long).length, 41);
  t.equal(uidlFromBase('has space'), sha('has space'));
  t.equal(uidlFromBase('tab\tname'), sha('tab\tname'));
  t.equal(uidlFromBase('caf\u00e9'), sha(Buffer.from('caf\u00e9', 'utf8')), '8-bit: hash of the UTF-8 bytes');
  const raw = Buffer.from([0x61, 0xff, 0x62]);
  t.equal(uidlFromBase(raw), sha(raw), 'raw bytes hash as they are');
  t.equal(uidlFromBase(''), sha(''));
  t.equal(hashedUidl('new/x'), sha('new/x'));
  t.match(hashedUidl('anything'), /^~[0-9a-f]{40}$/);
});

t.test('flat UIDLs', async (t) => {
  t.equal(flatUidl('message-1.eml'), 'message-1');
  t.equal(flatUidl('a b.eml'), sha('a b'));
});

t.test('deliveredName and withSeenFlag', async (t) => {
  t.equal(deliveredName('1.M2P3Q4.h', 10, 12), '1.M2P3Q4.h,S=10,W=12');
  t.equal(withSeenFlag('1.M2P3Q4.h,S=10,W=12', ':'), '1.M2P3Q4.h,S=10,W=12:2,S');
  t.equal(withSeenFlag('1.M2P3Q4.h', ';'), '1.M2P3Q4.h;2,S');
  t.equal(withSeenFlag('x:2,FRT', ':'), 'x:2,FRST', 'sorted');
  t.equal(withSeenFlag('x:2,', ':'), 'x:2,S');
  t.equal(withSeenFlag('x:2,Sa', ':'), 'x:2,Sa', 'already seen');
  t.equal(withSeenFlag('x:2,Pab', ':'), 'x:2,PSab', 'keywords sort after capitals');
  t.equal(withSeenFlag('x!2,R', ':'), 'x!2,RS', 'keeps the name\'s own separator');
  t.equal(withSeenFlag('x:1,exp', ':'), 'x:1,exp', 'experimental info untouched');
});

t.test('unique names', async (t) => {
  const gen = new UniqueNameGenerator({ hostname: 'mail/x:y', pid: 4242 });
  t.equal(gen.host, 'mail\\057x\\072y');
  const a = gen.next({ seconds: 1700000000, usec: 12 });
  const b = gen.next({ seconds: 1700000000, usec: 12 });
  t.match(a, /^1700000000\.M12P4242Q\d+\.mail\\057x\\072y$/);
  t.not(a, b, 'counter advances');
  const other = new UniqueNameGenerator({ hostname: 'mail/x:y', pid: 4242 });
  t.not(other.next({ seconds: 1700000000, usec: 12 }), b, 'counter is per process, not per generator');
  const parsed = parseMaildirName(a);
  t.equal(parsed?.seconds, 1700000000);
  t.equal(parsed?.usec, 12);
  t.equal(uidlFromBase(a), a, 'a plain UIDL');
  const now = new UniqueNameGenerator().next();
  t.match(now, new RegExp(`^\\d+\\.M\\d{1,6}P${process.pid}Q\\d+\\.`));
  const seenNames = new Set<string>();
  for (let i = 0; i < 1000; i++) seenNames.add(gen.next({ seconds: 1, usec: 1 }));
  t.equal(seenNames.size, 1000);
});

t.test('host sanitising', async (t) => {
  t.equal(sanitizeHost('a,b;c!d e'), 'a\\054b\\073c\\041d\\040e');
  t.equal(sanitizeHost(''), 'localhost');
  t.equal(sanitizeHost('h\u00e9'), 'h\\303\\251');
});
