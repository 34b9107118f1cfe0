/**
 * Who may read `/metrics` and `/healthz` (DESIGN "Names and defaults",
 * HTTP row): the loopback addresses 127.0.0.1 and ::1, and the configured
 * `http.adminNetworks` (CIDR). Matching is node:net's BlockList, on the
 * address as the client knows it (`::ffff:10.1.2.3` is `10.1.2.3`).
 */
import { BlockList, isIPv4 } from 'node:net';
import { normaliseAddress } from '../protocol/address.js';

export class AdminNetworks {
  readonly #list = new BlockList();
  readonly networks: readonly string[];

  /** `networks`: `address/prefix` strings as the config validated them (a bare address is one host). */
  constructor(networks: readonly string[]) {
    this.networks = ['127.0.0.1/32', '::1/128', ...networks];
    for (const network of this.networks) {
      const slash = network.lastIndexOf('/');
      const address = slash < 0 ? network : network.slice(0, slash);
      const type = isIPv4(address) ? 'ipv4' : 'ipv6';
      const prefix = slash < 0 ? (type === 'ipv4' ? 32 : 128) : Number(network.slice(slash + 1));
      this.#list.addSubnet(address, prefix, type);
    }
  }

  /** True when a client at `remoteAddress` may read the admin pages. */
  allows(remoteAddress: string | undefined): boolean {
    const address = normaliseAddress(remoteAddress);
    if (address === '') return false;
    try {
      return this.#list.check(address, isIPv4(address) ? 'ipv4' : 'ipv6');
    } catch {
      return false;
    }
  }
}
