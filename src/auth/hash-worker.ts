/**
 * The body of a HashWorkerPool thread: check one stored password at a time,
 * off the main thread (Argon2 at 64 MiB takes about a quarter of a second of
 * CPU; bcrypt and SHA-crypt milliseconds). Runs nothing at import time
 * unless it is a worker.
 */
import { parentPort } from 'node:worker_threads';
import { checkPassword, type PasswordCheck } from './password.js';

export interface HashJob {
  readonly id: number;
  readonly stored: string;
  readonly password: string;
  readonly defaultScheme: string | undefined;
}

export interface HashResult {
  readonly id: number;
  readonly check: PasswordCheck;
}

const port = parentPort;
if (port !== null) {
  port.on('message', (job: HashJob) => {
    const options = job.defaultScheme === undefined ? {} : { defaultScheme: job.defaultScheme };
    void checkPassword(job.stored, job.password, options).then((check) => port.postMessage({ id: job.id, check } satisfies HashResult));
  });
}
