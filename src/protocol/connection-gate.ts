/**
 * Per-IP and global connection limits, as a gate every new connection goes
 * through. ProtocolServer counts its own connections with a LocalConnectionGate;
 * with several worker processes (src/cli/cluster) the workers ask the
 * primary, which holds one LocalConnectionGate per server for all of them,
 * so the limits stay what the configuration says instead of N times that.
 */

export type GateRefusal = 'global-limit' | 'per-ip-limit';

export interface ConnectionLimits {
  /** Connections open at once; 0: no limit. */
  readonly maxConnections: number;
  /** Connections open at once from one client address; 0: no limit. */
  readonly maxConnectionsPerIp: number;
}

export interface ConnectionGate {
  /**
   * Count a new connection from `remote` (a normalised address) and say
   * whether it is over a limit. A refused connection is counted too, until
   * release(): it holds a socket while it reads its refusal.
   */
  admit(remote: string): GateRefusal | undefined | Promise<GateRefusal | undefined>;
  /** A connection counted by admit() closed. Exactly once per admit(). */
  release(remote: string): void;
}

export class LocalConnectionGate implements ConnectionGate {
  readonly #limits: ConnectionLimits;
  readonly #perIp = new Map<string, number>();
  #open = 0;

  constructor(limits: ConnectionLimits) {
    this.#limits = limits;
  }

  /** Connections counted now. */
  get open(): number {
    return this.#open;
  }

  admit(remote: string): GateRefusal | undefined {
    this.#open += 1;
    const count = (this.#perIp.get(remote) ?? 0) + 1;
    this.#perIp.set(remote, count);
    const { maxConnections, maxConnectionsPerIp } = this.#limits;
    if (maxConnections > 0 && this.#open > maxConnections) return 'global-limit';
    if (maxConnectionsPerIp > 0 && count > maxConnectionsPerIp) return 'per-ip-limit';
    return undefined;
  }

  release(remote: string): void {
    const count = this.#perIp.get(remote);
    if (count === undefined) return;
    this.#open = Math.max(0, this.#open - 1);
    if (count <= 1) this.#perIp.delete(remote);
    else this.#perIp.set(remote, count - 1);
  }
}
