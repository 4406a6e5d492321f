"""Realistic long responses for the workbench tests: nine answers of about 5,000 words each to one prompt, in
Markdown with headings, lists, code blocks and tables (the InstructGPT case of many long responses). Built
deterministically from a seed, so each answer reads differently from the first words on."""

import random

PROMPT = (
    "Our public HTTP API is hammered by a few clients. Explain how to design a **rate limiter** for it: compare "
    "token bucket, leaky bucket, fixed and sliding windows, say where the state lives when we run 12 app servers "
    "behind a load balancer, and show working Python for the approach you recommend. Include a table of trade-offs."
)

OPENINGS = [
    "Short answer: use a token bucket per API key, stored in Redis, refilled lazily on each request.",
    "Rate limiting is a question of fairness first and of protection second, so let us start from who you are protecting.",
    "Before choosing an algorithm, measure: which clients, which endpoints, and how bursty is the traffic really?",
    "I would not build this myself: put the limit at the edge (your load balancer or an API gateway) and keep the app simple.",
    "Here is a complete design, from the algorithm to the Redis schema to the response headers clients should see.",
    "The sliding window log is the most accurate limiter and the most expensive; the sliding window counter is the sweet spot.",
    "Think of the limiter as a small distributed system: every decision is a read-modify-write on shared state.",
    "A leaky bucket smooths traffic into a steady stream, which is what your database wants, not what your clients want.",
    "Let me walk through the four classic algorithms with the same example: 100 requests a minute, bursts of 20.",
]

SUBJECTS = [
    "the token bucket",
    "the leaky bucket",
    "a fixed window counter",
    "the sliding window log",
    "a sliding window counter",
    "Redis",
    "the load balancer",
    "each API key",
    "a burst of requests",
    "the refill rate",
    "the clock skew between servers",
    "a Lua script",
    "the 429 response",
    "the Retry-After header",
    "a noisy neighbour",
    "the p99 latency",
]
VERBS = [
    "absorbs",
    "rejects",
    "delays",
    "counts",
    "shares",
    "protects",
    "smooths",
    "penalises",
    "tolerates",
    "reports",
    "resets",
    "approximates",
    "serialises",
    "exposes",
    "hides",
]
OBJECTS = [
    "short spikes without punishing steady clients",
    "requests at the boundary of two windows",
    "state across twelve servers",
    "one atomic operation per request",
    "the cost of a round trip to Redis",
    "clients that retry too eagerly",
    "the fairness between large and small customers",
    "memory proportional to the request rate",
    "a predictable error for the client",
    "the exact moment the quota refills",
]

CODE = '''```python
import time

import redis

BUCKET = """
local tokens, stamp = unpack(redis.call('HMGET', KEYS[1], 'tokens', 'stamp'))
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
tokens = math.min(burst, (tonumber(tokens) or burst) + (now - (tonumber(stamp) or now)) * rate)
local allowed = tokens >= 1
if allowed then tokens = tokens - 1 end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'stamp', now)
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) * 2)
return allowed and 1 or 0
"""


class TokenBucket:
    def __init__(self, client: redis.Redis, rate: float, burst: int) -> None:
        self.script = client.register_script(BUCKET)
        self.rate, self.burst = rate, burst

    def allow(self, key: str) -> bool:
        return bool(self.script(keys=[f"rl:{key}"], args=[self.rate, self.burst, time.time()]))
```'''

TABLE = """| Algorithm | Bursts | Memory per key | Accuracy | Cost per request |
|---|---|---|---|---|
| Token bucket | allowed up to `burst` | 2 numbers | exact | 1 Redis call |
| Leaky bucket | smoothed away | 1 queue | exact | 1 call + a worker |
| Fixed window | double at the edges | 1 counter | rough | 1 `INCR` |
| Sliding log | exact | 1 timestamp per request | exact | `ZADD` + `ZREMRANGEBYSCORE` |
| Sliding counter | nearly exact | 2 counters | ~1 % error | 2 `INCR` |"""


def _sentence(rng: random.Random) -> str:
    return f"{rng.choice(SUBJECTS).capitalize()} {rng.choice(VERBS)} {rng.choice(OBJECTS)}."


def _paragraph(rng: random.Random, sentences: int) -> str:
    return " ".join(_sentence(rng) for _ in range(sentences))


def long_response(index: int, words: int = 5000) -> str:
    """About `words` words of Markdown, opening with OPENINGS[index]."""
    rng = random.Random(index)
    parts = [OPENINGS[index]]
    section = 0
    while sum(len(p.split()) for p in parts) < words:
        section += 1
        parts.append(f"## {section}. {rng.choice(SUBJECTS).capitalize()} and {rng.choice(SUBJECTS)}")
        parts.append(_paragraph(rng, 8))
        parts.append("\n".join(f"- {_sentence(rng)}" for _ in range(4)))
        if section % 3 == 1:
            parts.append(CODE)
        if section % 4 == 2:
            parts.append(TABLE)
        parts.append(_paragraph(rng, 10))
    return "\n\n".join(parts)


def nine_long_responses(words: int = 5000) -> list[str]:
    return [long_response(i, words) for i in range(len(OPENINGS))]
