// The host namespace's links as `ip -j -d link show` reports them, for the
// end-to-end tests' checks that a driver left nothing behind.
import { execFileSync } from 'node:child_process';

export interface Link {
  ifname: string;
  /** For a macvlan: its parent; for a veth: its peer. */
  link?: string;
  link_netnsid?: number;
  address?: string;
  master?: string;
  mtu?: number;
  operstate?: string;
  link_type?: string;
  linkinfo?: { info_kind?: string; info_data?: { mode?: string } };
}

export function hostLinks(): Link[] {
  return JSON.parse(execFileSync('ip', ['-j', '-d', 'link', 'show'], { encoding: 'utf8' })) as Link[];
}

export function linkExists(name: string): boolean {
  return hostLinks().some((l) => l.ifname === name);
}

/**
 * The host's links that `left` picks, once none is left or after ~5 s:
 * dockerd's deletes are synchronous, but the host gets a moment.
 */
export async function linksLeft(left: (l: Link) => boolean): Promise<Link[]> {
  let found: Link[] = [];
  for (let i = 0; i < 20; i++) {
    found = hostLinks().filter(left);
    if (found.length === 0) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  return found;
}

/** `name (kind)`, or `name (kind on parent)`, for a failure message. */
export const describeLink = (l: Link): string => `${l.ifname} (${l.linkinfo?.info_kind ?? l.link_type}${l.link && l.linkinfo?.info_kind === 'macvlan' ? ` on ${l.link}` : ''})`;
