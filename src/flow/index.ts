/**
 * Public API of src/flow: flow control per function shared by worker replicas. For now, rate
 * limits: the spec syntax and GCRA arithmetic (rate.ts, pure), the bucket's keys (rate-keys.ts)
 * and the limiter over the JetStream KV bucket (shared-rate-limiter.ts).
 */
export { defaultBurst, formatRate, intervalMs, MAX_RATE_PERIOD_MS, parseRate, takeTokens, type ParsedRate, type Rate, type Take } from './rate.js';
export { callerRateKey, functionRateKey, kvKeyToken, type RateLimitedFunction, type RateLimitKey } from './rate-keys.js';
export { sharedRateLimiter, type RateGrant, type SharedRateLimiter, type SharedRateLimiterOptions } from './shared-rate-limiter.js';
