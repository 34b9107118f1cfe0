/**
 * UTF8, RFC 6856 section 2: switch the session to UTF-8 mode, valid in
 * AUTHORIZATION. Afterwards USER, PASS and APOP accept UTF-8 names and
 * passwords (the `USER` argument of the capability says so). Messages are
 * sent as stored in either mode: maildird does no RFC 6857 downgrade.
 */
import { defineCommand } from '../command.js';
import { noArguments } from '../args.js';

export const utf8 = defineCommand({
  verb: 'UTF8',
  states: ['AUTHORIZATION'],
  capability: () => 'UTF8 USER',
  run(ctx, args) {
    noArguments(args);
    ctx.enableUtf8();
    ctx.ok('UTF8 enabled');
  },
});
