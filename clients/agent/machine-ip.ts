/**
 * The address the status center knows this machine by, when none is
 * configured: a global-scope address of the machine's interfaces, IPv4
 * before IPv6, physical before virtual. A machine whose egress address is not
 * on an interface (NAT) must configure it.
 */
import type { NetworkInterfaceInfo } from 'node:os';
import { canonicalIp } from '#contract/ip';

const LINK_LOCAL = /^(169\.254\.|fe[89ab][0-9a-f]:)/i;
/** Container and VM bridges carry no relay traffic of this machine. */
const VIRTUAL_INTERFACE =
  /^(docker|br-|veth|virbr|cni|flannel|cali|lxc|lxd|podman|vnet|kube)/;

/** Picks from an `os.networkInterfaces()` result; undefined when nothing qualifies. */
export function pickMachineIp(
  interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>,
): string | undefined {
  const candidates = Object.entries(interfaces).flatMap(([name, entries]) =>
    (entries ?? [])
      .filter((entry) => !entry.internal && !LINK_LOCAL.test(entry.address))
      .map((entry) => ({ entry, virtual: VIRTUAL_INTERFACE.test(name) })),
  );
  const rank = ({ entry, virtual }: (typeof candidates)[number]) =>
    (virtual ? 2 : 0) + (entry.family === 'IPv4' ? 0 : 1);
  const chosen = candidates.sort((a, b) => rank(a) - rank(b))[0];
  return chosen ? canonicalIp(chosen.entry.address) : undefined;
}
