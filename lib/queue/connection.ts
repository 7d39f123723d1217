/**
 * The Redis side of the job queue: URLs, queue names, and a checked first connection (so a
 * wrong URL or an old server fails at once with what to do, not in a reconnect loop).
 * Jobs live in a BullMQ queue (bull:<name>:* keys); any Redis 6.2+ works (Debian's
 * `redis-server` is 7.x).
 */
import type { Redis, RedisOptions } from 'ioredis';
import { JukeboxError } from '../errors.js';

type RedisClass = typeof import('ioredis').Redis;
let redisClass: RedisClass | undefined;
let bullmqModule: typeof import('bullmq') | undefined;

/**
 * ioredis and BullMQ are loaded on first use, so the rest of the package (and every other CLI
 * command) starts without them.
 */
export async function queueLibraries(): Promise<{ Redis: RedisClass; bullmq: typeof import('bullmq') }> {
  redisClass ??= (await import('ioredis')).Redis;
  bullmqModule ??= await import('bullmq');
  return { Redis: redisClass, bullmq: bullmqModule };
}

export interface QueueConnectionOptions {
  /** redis://[user:password@]host[:port][/db] (rediss:// for TLS). */
  redis: string;
  /** Queue name (default "jukebox"): workers take jobs from the queue of this name only. */
  queue?: string;
}

export const DEFAULT_QUEUE = 'jukebox';
/** The oldest Redis BullMQ is tested against that this package accepts. */
const MIN_REDIS = [6, 2] as const;

/** The URL with its password hidden, for messages. */
export function redactRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//***@');
  }
}

export function checkRedisUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new JukeboxError('ERR_INVALID_ARGUMENT', `--redis must be a URL such as redis://127.0.0.1:6379, got ${JSON.stringify(url)}`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
    throw new JukeboxError('ERR_INVALID_ARGUMENT', `--redis must be a redis:// or rediss:// URL, got ${redactRedisUrl(url)}`);
  }
  return url;
}

export function queueName(o: { queue?: string }): string {
  const name = o.queue ?? DEFAULT_QUEUE;
  if (!/^[A-Za-z0-9_.-]{1,100}$/.test(name)) {
    throw new JukeboxError('ERR_INVALID_ARGUMENT', `queue name ${JSON.stringify(name)}: use 1-100 letters, digits, '.', '-' or '_'`);
  }
  return name;
}

/**
 * A connection for BullMQ (maxRetriesPerRequest null: commands wait through a reconnect, as
 * BullMQ's workers require). ioredis reconnects by itself after a drop.
 */
export async function redisConnection(url: string, extra: RedisOptions = {}): Promise<Redis> {
  const { Redis } = await queueLibraries();
  const r = new Redis(checkRedisUrl(url), { maxRetriesPerRequest: null, enableReadyCheck: true, ...extra });
  // Errors surface through the commands that fail; without a listener ioredis prints every
  // reconnect attempt as an unhandled 'error' event.
  r.on('error', () => {});
  return r;
}

export interface RedisServerInfo {
  version: string;
  /** maxmemory-policy: BullMQ needs "noeviction" (an evicting Redis can drop jobs). */
  maxmemoryPolicy: string | undefined;
}

/**
 * Connects once with a deadline and checks the server: reachable, Redis 6.2 or newer.
 * Fails with ERR_IO (unreachable, with how to start one) or ERR_INVALID_ARGUMENT (too old).
 */
export async function checkRedis(url: string, timeoutMs = 5000): Promise<RedisServerInfo> {
  checkRedisUrl(url);
  const { Redis } = await queueLibraries();
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: timeoutMs, enableOfflineQueue: false });
  r.on('error', () => {});
  try {
    try {
      await r.connect();
    } catch (e) {
      throw new JukeboxError(
        'ERR_IO',
        `cannot reach Redis at ${redactRedisUrl(url)}: ${(e as Error).message} (start one: "redis-server --port 6379", Debian's redis-server package, or any Redis 6.2+)`,
        { cause: e },
      );
    }
    const info = await r.info();
    const field = (k: string) => new RegExp(`^${k}:(.*)$`, 'm').exec(info)?.[1]?.trim();
    const version = field('redis_version') ?? '0';
    const [maj, min] = version.split('.').map(Number);
    if (!(maj > MIN_REDIS[0] || (maj === MIN_REDIS[0] && min >= MIN_REDIS[1]))) {
      throw new JukeboxError('ERR_INVALID_ARGUMENT', `${redactRedisUrl(url)} runs Redis ${version}; the job queue needs Redis ${MIN_REDIS.join('.')} or newer`);
    }
    return { version, maxmemoryPolicy: field('maxmemory_policy') };
  } finally {
    r.disconnect();
  }
}
