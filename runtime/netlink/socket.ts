// The AF_NETLINK/NETLINK_ROUTE socket, driven through libc with koffi. koffi
// works the same under Node and Deno, so this is the one mechanism for both.
// Every call is synchronous and blocking: send a request, then read
// datagrams until the acknowledgement (or the end of a dump) for that
// request's sequence number arrives.

import koffi from 'koffi';
import {
  NLM_F_ACK,
  NLM_F_DUMP,
  NLM_F_REQUEST,
  ReplyCollector,
  encodeMessage,
  errnoName,
  netlinkError,
  type Attr,
  type NetlinkMessage,
} from './codec.ts';

// Linux constants (<sys/socket.h>, <linux/netlink.h>, <fcntl.h>, <sched.h>).
const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0x80000;
const NETLINK_ROUTE = 0;
const SOL_SOCKET = 1;
const SO_RCVTIMEO = 20;
const SOL_NETLINK = 270;
const NETLINK_CAP_ACK = 10;
const NETLINK_EXT_ACK = 11;
const MSG_TRUNC = 0x20;
const O_RDONLY = 0;
const O_CLOEXEC = 0x80000;
const CLONE_NEWNET = 0x40000000;
const EINTR = 4;
const EAGAIN = 11;

/** Size of the receive buffer; the kernel never builds a netlink datagram above 32 KiB. */
const RECV_BUFFER_SIZE = 64 * 1024;
/** How long one recv() may block before the request is declared lost. */
const REPLY_TIMEOUT_SECONDS = 5;
/** How many times a dump interrupted by concurrent changes is redone. */
const DUMP_ATTEMPTS = 3;

const libc = koffi.load('libc.so.6');
// koffi has no ssize_t; intptr_t has the same size and signedness on Linux.
const sys = {
  socket: libc.func('int socket(int domain, int type, int protocol)'),
  bind: libc.func('int bind(int fd, const void *addr, uint32_t addrlen)'),
  setsockopt: libc.func('int setsockopt(int fd, int level, int name, const void *value, uint32_t len)'),
  sendto: libc.func('intptr_t sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t addrlen)'),
  recv: libc.func('intptr_t recv(int fd, void *buf, size_t len, int flags)'),
  close: libc.func('int close(int fd)'),
  // open(2) is variadic; the mode argument is only read with O_CREAT, so two arguments suffice.
  open: libc.func('int open(const char *path, int flags)'),
  setns: libc.func('int setns(int fd, int nstype)'),
};

/** Throws a NetlinkError for a failed system call, naming what was being done. */
function check(result: number, context: string): number {
  if (result < 0) throw netlinkError(koffi.errno(), context);
  return result;
}

/** struct sockaddr_nl for the kernel (port id 0, no multicast groups). */
function kernelAddress(): Uint8Array {
  const addr = new Uint8Array(12);
  new DataView(addr.buffer).setUint16(0, AF_NETLINK, true);
  return addr;
}

function setIntOption(fd: number, level: number, name: number, value: number, context: string): void {
  const buf = new Uint8Array(4);
  new DataView(buf.buffer).setInt32(0, value, true);
  check(sys.setsockopt(fd, level, name, buf, 4), context);
}

/**
 * Creates the raw socket. With `netns`, the current thread enters that
 * network namespace just long enough to create it (a netlink socket stays
 * bound to the namespace it was created in), then returns to its own.
 */
function openSocket(netns: string | undefined): number {
  if (netns === undefined) return check(sys.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE), 'open netlink socket');

  const original = check(sys.open('/proc/thread-self/ns/net', O_RDONLY | O_CLOEXEC), 'open /proc/thread-self/ns/net');
  try {
    const target = check(sys.open(netns, O_RDONLY | O_CLOEXEC), `open network namespace ${netns}`);
    try {
      check(sys.setns(target, CLONE_NEWNET), `enter network namespace ${netns}`);
    } finally {
      sys.close(target);
    }
    try {
      return check(sys.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE), `open netlink socket in ${netns}`);
    } finally {
      if (sys.setns(original, CLONE_NEWNET) < 0) {
        // The thread is stuck in the wrong namespace: nothing after this can be trusted.
        throw new Error(`netlink: cannot return to the original network namespace: ${errnoName(koffi.errno())}`);
      }
    }
  } finally {
    sys.close(original);
  }
}

/**
 * Opens the network namespace file at `path` (e.g. /var/run/netns/NAME or a
 * docker sandbox key), passes its descriptor to `use`, and closes it again,
 * also when `use` throws. A missing or unreadable file fails as a
 * NetlinkError (ENOENT, EACCES...) described by `context`.
 */
export function withNetnsFd<T>(path: string, context: string, use: (fd: number) => T): T {
  const fd = check(sys.open(path, O_RDONLY | O_CLOEXEC), `${context}: open ${path}`);
  try {
    return use(fd);
  } finally {
    sys.close(fd);
  }
}

export interface NetlinkSocketOptions {
  /** Path of a network namespace file, e.g. /var/run/netns/NAME; default: the process's namespace. */
  netns?: string;
}

/** One NETLINK_ROUTE socket, bound to a kernel-assigned port id. */
export class NetlinkSocket {
  #fd: number;
  #seq = 0;
  readonly #buffer = new Uint8Array(RECV_BUFFER_SIZE);

  constructor(options: NetlinkSocketOptions = {}) {
    this.#fd = openSocket(options.netns);
    try {
      const fd = this.#fd;
      // Port id 0 lets the kernel pick a unique one.
      check(sys.bind(fd, kernelAddress(), 12), 'bind netlink socket');
      // Errors echo only the request header, and carry the kernel's explanation text.
      setIntOption(fd, SOL_NETLINK, NETLINK_CAP_ACK, 1, 'set NETLINK_CAP_ACK');
      setIntOption(fd, SOL_NETLINK, NETLINK_EXT_ACK, 1, 'set NETLINK_EXT_ACK');
      // struct timeval { tv_sec, tv_usec }, two 64-bit longs.
      const timeout = new Uint8Array(16);
      new DataView(timeout.buffer).setBigInt64(0, BigInt(REPLY_TIMEOUT_SECONDS), true);
      check(sys.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, timeout, 16), 'set SO_RCVTIMEO');
    } catch (err) {
      this.close();
      throw err;
    }
  }

  /**
   * Sends one request with NLM_F_REQUEST|NLM_F_ACK plus `flags`, and returns
   * the data messages received before the acknowledgement (e.g. the
   * RTM_NEWLINK answering an RTM_GETLINK). Throws NetlinkError, described
   * by `context`, when the kernel refuses.
   */
  request(type: number, flags: number, familyHeader: Uint8Array, attrs: Attr[], context: string): NetlinkMessage[] {
    return this.#transact(type, NLM_F_REQUEST | NLM_F_ACK | flags, familyHeader, attrs, context).messages;
  }

  /** Dumps every object of a kind (e.g. RTM_GETLINK) and returns all the parts. */
  dump(type: number, familyHeader: Uint8Array, context: string): NetlinkMessage[] {
    for (let attempt = 1; ; attempt++) {
      const replies = this.#transact(type, NLM_F_REQUEST | NLM_F_DUMP, familyHeader, [], context);
      if (!replies.interrupted || attempt === DUMP_ATTEMPTS) return replies.messages;
    }
  }

  close(): void {
    if (this.#fd >= 0) {
      sys.close(this.#fd);
      this.#fd = -1;
    }
  }

  #transact(type: number, flags: number, familyHeader: Uint8Array, attrs: Attr[], context: string): ReplyCollector {
    if (this.#fd < 0) throw new Error(`${context}: netlink socket is closed`);
    this.#seq = (this.#seq + 1) >>> 0;
    const message = encodeMessage({ type, flags, seq: this.#seq }, familyHeader, attrs);
    const sent = check(sys.sendto(this.#fd, message, message.length, 0, kernelAddress(), 12), `${context}: send`);
    if (sent !== message.length) throw new Error(`${context}: netlink sent ${sent} of ${message.length} bytes`);

    const replies = new ReplyCollector(this.#seq);
    while (!replies.feed(this.#receive(context)));
    if (replies.error) throw netlinkError(replies.error.errno, context, replies.error.extack);
    return replies;
  }

  /** Reads one datagram, retrying on EINTR. */
  #receive(context: string): Uint8Array {
    for (;;) {
      // MSG_TRUNC makes recv() return the datagram's real size, so truncation is detected.
      const n: number = sys.recv(this.#fd, this.#buffer, this.#buffer.length, MSG_TRUNC);
      if (n >= 0) {
        if (n > this.#buffer.length) throw new Error(`${context}: netlink reply of ${n} bytes exceeds the buffer`);
        return this.#buffer.slice(0, n); // a copy: decoded payloads outlive the buffer's next use
      }
      const errno = koffi.errno();
      if (errno === EINTR) continue;
      if (errno === EAGAIN) throw new Error(`${context}: no netlink reply within ${REPLY_TIMEOUT_SECONDS}s`);
      throw netlinkError(errno, `${context}: receive`);
    }
  }
}
