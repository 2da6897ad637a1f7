// The AF_NETLINK/NETLINK_ROUTE socket, driven through libc with koffi. koffi
// works the same under Node and Deno, so this is the one mechanism for both.
// Every call is synchronous and blocking: send a request, then read
// datagrams until the acknowledgement (or the end of a dump) for that
// request's sequence number arrives. Requests are encoded into one buffer
// and replies received into another, both reused from call to call.

import koffi from 'koffi';
import { NetlinkError } from './backend.ts';
import {
  IFINFOMSG_LEN,
  IFLA_EXT_MASK,
  IFLA_IFNAME,
  NLM_F_ACK,
  NLM_F_DUMP,
  NLM_F_REQUEST,
  RTEXT_FILTER_SKIP_STATS,
  RTM_GETLINK,
  ReplyCollector,
  encodeIfInfoMsg,
  encodeMessageInto,
  errnoName,
  messageSize,
  netlinkError,
  strAttr,
  u32Attr,
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
const ENODEV = 19;
/** <linux/sockios.h>: the name of the link whose index is in a struct ifreq, and the reverse. */
const SIOCGIFNAME = 0x8910;
const SIOCGIFINDEX = 0x8933;
/** struct ifreq: a 16-byte name (IFNAMSIZ, NUL included), then a 24-byte union whose first int is the index. */
const IFNAMSIZ = 16;
const IFREQ_SIZE = 40;
/** <linux/capability.h>: the header version with two 32-bit words per set. */
const LINUX_CAPABILITY_VERSION_3 = 0x20080522;
/** struct __user_cap_data_struct[2]: { effective, permitted, inheritable } u32s, twice. */
const CAP_DATA_SIZE = 24;

/** Size of the receive buffer; the kernel never builds a netlink datagram above 32 KiB. */
const RECV_BUFFER_SIZE = 64 * 1024;
/** Initial size of the send buffer; it grows for a larger request. */
const SEND_BUFFER_SIZE = 4096;
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
  // ioctl(2) is variadic; the third argument is always a pointer here (glibc's wrapper is a plain syscall stub).
  ioctl: libc.func('int ioctl(int fd, unsigned long request, void *arg)'),
  capget: libc.func('int capget(void *header, void *data)'),
  capset: libc.func('int capset(void *header, const void *data)'),
};

const utf8 = new TextEncoder();
const utf8d = new TextDecoder();

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
const KERNEL_ADDRESS = kernelAddress();

/** struct __user_cap_header_struct for capget/capset: version 3, pid 0 (the calling thread). */
const CAP_HEADER = (() => {
  const header = new Uint8Array(8);
  new DataView(header.buffer).setUint32(0, LINUX_CAPABILITY_VERSION_3, true);
  return header;
})();

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
  #sendBuffer = new Uint8Array(SEND_BUFFER_SIZE);
  readonly #ifreq = new Uint8Array(IFREQ_SIZE);
  readonly #ifreqView = new DataView(this.#ifreq.buffer);
  /** This thread's capabilities as capget() reports them, and the same with no effective ones. */
  readonly #caps = new Uint8Array(CAP_DATA_SIZE);
  readonly #capsView = new DataView(this.#caps.buffer);
  readonly #noCaps = new Uint8Array(CAP_DATA_SIZE);
  readonly #noCapsView = new DataView(this.#noCaps.buffer);
  /** False once capget/capset has been refused (seccomp, an LSM): links are then looked up with RTM_GETLINK. */
  #ioctlLookup = true;

  constructor(options: NetlinkSocketOptions = {}) {
    this.#fd = openSocket(options.netns);
    try {
      const fd = this.#fd;
      // Port id 0 lets the kernel pick a unique one.
      check(sys.bind(fd, KERNEL_ADDRESS, 12), 'bind netlink socket');
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

  /**
   * Sends one get request (e.g. RTM_GETLINK for one link) without
   * NLM_F_ACK, so that the kernel answers with the object alone, and
   * returns that answer. Throws NetlinkError, described by `context`, when
   * the kernel refuses (ENODEV...).
   */
  get(type: number, familyHeader: Uint8Array, attrs: Attr[], context: string): NetlinkMessage {
    const [reply] = this.#transact(type, NLM_F_REQUEST, familyHeader, attrs, context, true).messages;
    if (!reply) throw new Error(`${context}: the kernel answered without the object`);
    return reply;
  }

  /**
   * The index of the link named `name` in the socket's network namespace,
   * looked up afresh at each call (links are renamed and moved behind our
   * back, so an index is never kept). A missing link fails as ENODEV under
   * `context`, as any other refusal does.
   *
   * The look-up is one ioctl(SIOCGIFINDEX) on this socket, which the kernel
   * answers in the socket's namespace without building a message. That
   * ioctl has a side effect when the name does not exist: the kernel tries
   * to load a module named "netdev-NAME" (with CAP_NET_ADMIN) and then one
   * named NAME itself (with CAP_SYS_MODULE), running modprobe each time
   * (dev_load() in net/core/dev_ioctl.c). Link names come from drivers, so
   * the ioctl runs with this thread's effective capabilities cleared (the
   * look-up needs none, and the kernel then loads nothing) and restored
   * right after. Where capget/capset is refused, the look-up is an
   * RTM_GETLINK whose reply is read only for its index.
   */
  linkIndex(name: string, context: string): number {
    if (this.#fd < 0) throw new Error(`${context}: netlink socket is closed`);
    const ifreq = this.#ifreq;
    ifreq.fill(0);
    // The kernel reads at most IFNAMSIZ - 1 bytes and cuts at a NUL or ':'; a name it would cut is refused here.
    const { read } = utf8.encodeInto(name, ifreq.subarray(0, IFNAMSIZ - 1));
    if (name.length === 0 || read !== name.length || /[\0:]/.test(name)) {
      throw new Error(`${context}: link name ${JSON.stringify(name)} cannot be looked up`);
    }
    if (this.#ioctlLookup) {
      const errno = this.#ioctlIndex();
      if (errno === 0) return this.#ifreqView.getInt32(IFNAMSIZ, true);
      if (errno > 0) throw netlinkError(errno, context);
    }
    return this.#getlinkIndex(name, context);
  }

  /**
   * The name the link with index `index` has now in the socket's network
   * namespace, or undefined when there is none: one ioctl(SIOCGIFNAME),
   * which (unlike SIOCGIFINDEX) never loads modules.
   */
  linkName(index: number, context: string): string | undefined {
    if (this.#fd < 0) throw new Error(`${context}: netlink socket is closed`);
    const ifreq = this.#ifreq;
    ifreq.fill(0);
    this.#ifreqView.setInt32(IFNAMSIZ, index, true);
    if (sys.ioctl(this.#fd, SIOCGIFNAME, ifreq) < 0) {
      const errno = koffi.errno();
      if (errno === ENODEV) return undefined;
      throw netlinkError(errno, context);
    }
    const end = ifreq.indexOf(0);
    return utf8d.decode(ifreq.subarray(0, end < 0 || end > IFNAMSIZ ? IFNAMSIZ : end));
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

  /**
   * SIOCGIFINDEX for the name in #ifreq, with no effective capabilities (see
   * linkIndex). Returns 0 with the index in #ifreq, a positive errno when
   * the kernel refused, or -1 when capget/capset was refused (nothing was
   * looked up; #ioctlLookup is now false).
   */
  #ioctlIndex(): number {
    const caps = this.#caps;
    // Read afresh each time: restoring an old copy could hand back capabilities the host has dropped since.
    if (sys.capget(CAP_HEADER, caps) < 0) {
      this.#ioctlLookup = false;
      return -1;
    }
    const held = this.#capsView.getUint32(0, true) !== 0 || this.#capsView.getUint32(12, true) !== 0;
    if (held) {
      this.#noCaps.set(caps);
      this.#noCapsView.setUint32(0, 0, true);
      this.#noCapsView.setUint32(12, 0, true);
      if (sys.capset(CAP_HEADER, this.#noCaps) < 0) {
        this.#ioctlLookup = false;
        return -1;
      }
    }
    try {
      return sys.ioctl(this.#fd, SIOCGIFINDEX, this.#ifreq) < 0 ? koffi.errno() : 0;
    } finally {
      if (held && sys.capset(CAP_HEADER, caps) < 0) {
        // The thread cannot act for the host any more: nothing after this can be trusted.
        throw new Error(`netlink: cannot restore this thread's capabilities: ${errnoName(koffi.errno())}`);
      }
    }
  }

  /** RTM_GETLINK for one link, without statistics; only the index is read from the reply. */
  #getlinkIndex(name: string, context: string): number {
    const attrs = [strAttr(IFLA_IFNAME, name), u32Attr(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS)];
    let reply: NetlinkMessage;
    try {
      reply = this.get(RTM_GETLINK, encodeIfInfoMsg({}), attrs, context);
    } catch (err) {
      // As from the ioctl: ENODEV under `context`, without the kernel's extended-ack text.
      if (err instanceof NetlinkError && err.errno === ENODEV) throw netlinkError(ENODEV, context);
      throw err;
    }
    if (reply.payload.length < IFINFOMSG_LEN) throw new Error(`${context}: no link in the RTM_GETLINK reply`);
    return new DataView(reply.payload.buffer, reply.payload.byteOffset, IFINFOMSG_LEN).getInt32(4, true);
  }

  /** Sends one request and collects the replies to it; with `first`, only until the first data message. */
  #transact(type: number, flags: number, familyHeader: Uint8Array, attrs: Attr[], context: string, first = false): ReplyCollector {
    if (this.#fd < 0) throw new Error(`${context}: netlink socket is closed`);
    this.#seq = (this.#seq + 1) >>> 0;
    const size = messageSize(familyHeader, attrs);
    if (size > this.#sendBuffer.length) this.#sendBuffer = new Uint8Array(Math.max(size, 2 * this.#sendBuffer.length));
    encodeMessageInto(this.#sendBuffer, { type, flags, seq: this.#seq }, familyHeader, attrs);
    const sent = check(sys.sendto(this.#fd, this.#sendBuffer, size, 0, KERNEL_ADDRESS, 12), `${context}: send`);
    if (sent !== size) throw new Error(`${context}: netlink sent ${sent} of ${size} bytes`);

    const replies = new ReplyCollector(this.#seq);
    while (!replies.feed(this.#receive(context)) && !(first && replies.messages.length > 0));
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
        return this.#buffer.subarray(0, n); // not a copy: ReplyCollector copies what it keeps
      }
      const errno = koffi.errno();
      if (errno === EINTR) continue;
      if (errno === EAGAIN) throw new Error(`${context}: no netlink reply within ${REPLY_TIMEOUT_SECONDS}s`);
      throw netlinkError(errno, `${context}: receive`);
    }
  }
}
