import { readdir, readFile, readlink } from 'node:fs/promises';

/**
 * The TCP sockets a process tree listens on, read from /proc (Linux): /proc always exists, where
 * `ss` (iproute2) may not be installed. A LISTEN socket of /proc/net/tcp{,6} belongs to the tree
 * when one of the tree's processes holds a file descriptor `socket:[inode]` with its inode.
 */

/** One listening TCP socket: its address as text (IPv6 without brackets) and port. */
export interface ListeningSocket {
  readonly address: string;
  readonly port: number;
  readonly pid: number;
}

const TCP_LISTEN = '0A';

/** `pid` and all its descendants (children of children, ...), from each process's stat ppid. */
export async function processTree(pid: number): Promise<number[]> {
  const parents = new Map<number, number>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => undefined);
    // The command name (field 2) is in parentheses and may hold spaces; ppid is the 2nd field after it.
    const afterName = stat?.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (afterName?.[1] !== undefined) parents.set(Number(entry), Number(afterName[1]));
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) {
    for (const [child, parent] of parents) if (parent === tree[i] && !tree.includes(child)) tree.push(child);
  }
  return tree;
}

/** Every LISTEN TCP socket (IPv4 and IPv6) held by `pid` or any of its descendants. */
export async function listeningSocketsOfTree(pid: number): Promise<ListeningSocket[]> {
  const listening = new Map<string, { address: string; port: number }>();
  for (const [file, decode] of [
    ['/proc/net/tcp', decodeIPv4],
    ['/proc/net/tcp6', decodeIPv6],
  ] as const) {
    const text = await readFile(file, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10 || fields[3] !== TCP_LISTEN) continue;
      const [hexAddress = '', hexPort = ''] = fields[1]!.split(':');
      listening.set(fields[9]!, { address: decode(hexAddress), port: parseInt(hexPort, 16) });
    }
  }
  const sockets: ListeningSocket[] = [];
  for (const member of await processTree(pid)) {
    const fds = await readdir(`/proc/${member}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const target = await readlink(`/proc/${member}/fd/${fd}`).catch(() => '');
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      const socket = inode === undefined ? undefined : listening.get(inode);
      if (socket !== undefined && !sockets.some((s) => s.port === socket.port && s.address === socket.address)) {
        sockets.push({ ...socket, pid: member });
      }
    }
  }
  return sockets;
}

/** /proc/net/tcp writes an IPv4 address as 8 hex digits in host (little-endian) byte order. */
export function decodeIPv4(hex: string): string {
  const bytes = Buffer.from(hex, 'hex');
  return [bytes[3], bytes[2], bytes[1], bytes[0]].join('.');
}

/** /proc/net/tcp6 writes an IPv6 address as four 32-bit words, each in host byte order. */
export function decodeIPv6(hex: string): string {
  const bytes = Buffer.from(hex, 'hex');
  for (let word = 0; word < 16; word += 4) bytes.subarray(word, word + 4).reverse();
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  // Compressed forms vary; a full form is enough for comparisons in tests.
  const full = groups.join(':');
  if (full === '0:0:0:0:0:0:0:1') return '::1';
  if (full === '0:0:0:0:0:0:0:0') return '::';
  return full;
}
