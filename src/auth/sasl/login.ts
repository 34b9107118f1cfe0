/**
 * SASL LOGIN (draft-murchison-sasl-login): the server prompts `Username:`
 * then `Password:` (each base64), the client answers each in base64.
 * Obsolete but what Outlook and many older clients send. A client may give
 * the user name as the initial response (`AUTH LOGIN dXNlcg==`, as
 * nodemailer's smtp-server also accepts); the exchange then goes straight to
 * the password prompt.
 */
import { challengeStep, decodeUtf8, doneStep, readClientPayload, saslError, type SaslExchange, type SaslStep } from './exchange.js';

export const LOGIN_USERNAME_PROMPT = 'Username:';
export const LOGIN_PASSWORD_PROMPT = 'Password:';

export class LoginExchange implements SaslExchange {
  readonly mechanism = 'LOGIN' as const;
  #state: 'new' | 'username' | 'password' | 'ended' = 'new';
  #login = '';

  start(initialResponse?: string): SaslStep {
    if (this.#state !== 'new') return this.#end(saslError('finished', 'exchange already started'));
    if (initialResponse === undefined) {
      this.#state = 'username';
      return challengeStep(LOGIN_USERNAME_PROMPT);
    }
    return this.#username(initialResponse, true);
  }

  next(clientLineBase64: string): SaslStep {
    switch (this.#state) {
      case 'username':
        return this.#username(clientLineBase64, false);
      case 'password':
        return this.#password(clientLineBase64);
      case 'new':
      case 'ended':
        return this.#end(saslError('finished', 'no challenge outstanding'));
    }
  }

  #field(line: string, initial: boolean, what: string): string | SaslStep {
    const payload = readClientPayload(line, initial);
    if (payload.kind === 'error') return this.#end(payload.step);
    const text = decodeUtf8(payload.bytes);
    if (text === undefined) return this.#end(saslError('malformed', `${what} is not UTF-8`));
    if (text === '' || text.includes('\0')) return this.#end(saslError('malformed', `empty ${what} or NUL in it`));
    return text;
  }

  #username(line: string, initial: boolean): SaslStep {
    const login = this.#field(line, initial, 'user name');
    if (typeof login !== 'string') return login;
    this.#login = login;
    this.#state = 'password';
    return challengeStep(LOGIN_PASSWORD_PROMPT);
  }

  #password(line: string): SaslStep {
    const password = this.#field(line, false, 'password');
    if (typeof password !== 'string') return password;
    return this.#end(doneStep({ kind: 'password', mechanism: 'LOGIN', login: this.#login, password }));
  }

  #end(step: SaslStep): SaslStep {
    this.#state = 'ended';
    this.#login = '';
    return step;
  }
}
