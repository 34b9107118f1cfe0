/**
 * QUIT, RFC 1939 sections 4 and 6. In TRANSACTION it enters UPDATE and
 * commits the DELE marks (and the Seen step) as one durable batch; `+OK`
 * goes out only after the store says the change is on disk, and a failure
 * undoes everything and says so (STYLE.md 5, DESIGN.md invariant 2).
 */
import { defineCommand } from '../command.js';
import { noArguments } from '../args.js';
import { isStorageError } from '../../errors.js';
import { assertNever } from '../state.js';

const SIGN_OFF = 'maildird POP3 server signing off';

export const quit = defineCommand({
  verb: 'QUIT',
  states: ['AUTHORIZATION', 'TRANSACTION'],
  async run(ctx, args) {
    noArguments(args);
    ctx.closeAfterReply();
    const state = ctx.state;
    switch (state.name) {
      case 'AUTHORIZATION':
        ctx.ok(SIGN_OFF);
        return;
      case 'TRANSACTION': {
        await ctx.stopReadAhead();
        const update = { deleted: new Set(state.deleted), retrieved: new Set(state.retrieved) };
        ctx.transition({ name: 'UPDATE', user: state.user, maildrop: state.maildrop, ...update });
        try {
          const result = await state.maildrop.commit(update);
          ctx.noteCommitted([...update.deleted].sort((a, b) => a - b));
          ctx.ok(
            result.deleted === 0 ? SIGN_OFF : `${SIGN_OFF} (${result.deleted} message${result.deleted === 1 ? '' : 's'} deleted)`,
          );
        } catch (err) {
          ctx.log.error({ err }, 'UPDATE failed: nothing deleted');
          ctx.err('deleted messages not removed', isStorageError(err, 'permanent') ? 'SYS/PERM' : 'SYS/TEMP');
        }
        return;
      }
      default:
        return assertNever(state);
    }
  },
});
