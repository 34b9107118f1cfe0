/**
 * SASL PLAIN (RFC 4616): one message `[authzid] NUL authcid NUL passwd`,
 * UTF-8, as the initial response or after an empty challenge. maildird has
 * no proxy authorization: an authzid is accepted only when it is empty or
 * the same as the authcid (RFC 4616 section 2 lets the server refuse the
 * rest). Empty authcid or passwd is malformed (both are 1*SAFE).
 */
import {
  doneStep,
  decodeUtf8,
  readClientPayload,
  saslError,
  type SaslExchange,
  type SaslStep,
} from './exchange.js';

export class PlainExchange implements SaslExchange {
  readonly mechanism = 'PLAIN' as const;
  #state: 'new' | 'waiting' | 'ended' = 'new';

  start(initialResponse?: string): SaslStep {
    if (this.#state !== 'new') return this.#end(saslError('finished', 'exchange already started'));
    if (initialResponse === undefined) {
      this.#state = 'waiting';
      // RFC 4422 section 5: a server-first empty challenge asks for the message.
      return { kind: 'challenge', challenge: '' };
    }
    return this.#message(initialResponse, true);
  }

  next(clientLineBase64: string): SaslStep {
    if (this.#state !== 'waiting') return this.#end(saslError('finished', 'no challenge outstanding'));
    return this.#message(clientLineBase64, false);
  }

  #message(line: string, initial: boolean): SaslStep {
    const payload = readClientPayload(line, initial);
    if (payload.kind === 'error') return this.#end(payload.step);
    const bytes = payload.bytes;
    const first = bytes.indexOf(0);
    const second = first === -1 ? -1 : bytes.indexOf(0, first + 1);
    if (first === -1 || second === -1 || bytes.indexOf(0, second + 1) !== -1) {
      return this.#end(saslError('malformed', 'PLAIN message needs exactly two NUL separators'));
    }
    const authzid = decodeUtf8(bytes.subarray(0, first));
    const authcid = decodeUtf8(bytes.subarray(first + 1, second));
    const password = decodeUtf8(bytes.subarray(second + 1));
    if (authzid === undefined || authcid === undefined || password === undefined) {
      return this.#end(saslError('malformed', 'PLAIN fields must be UTF-8'));
    }
    if (authcid === '' || password === '') return this.#end(saslError('malformed', 'empty authcid or password'));
    if (authzid !== '' && authzid !== authcid) {
      return this.#end(saslError('authzid-denied', 'authorization identity differs from the authentication identity'));
    }
    return this.#end(doneStep({ kind: 'password', mechanism: 'PLAIN', login: authcid, password }));
  }

  #end(step: SaslStep): SaslStep {
    this.#state = 'ended';
    return step;
  }
}
