"""Django's Redis cache, reusing one client object per connection pool, with one-trip counters.

Django's ``RedisCacheClient.get_client`` builds a new ``redis.Redis`` for every cache call, and
each construction copies redis-py's table of ~170 response callbacks: three of them per API
request (the rate-limit counter) cost more CPU than the Redis round trips. The client is
thread-safe and only wraps the shared pool, so one per pool is enough.
"""

from django.core.cache.backends.redis import RedisCache, RedisCacheClient

# INCRBY only when the key exists, in one round trip. Django's incr asks EXISTS first, then
# INCRBY: two round trips on every rate-limited request.
_INCR_EXISTING = "if redis.call('exists', KEYS[1]) == 1 then return redis.call('incrby', KEYS[1], ARGV[1]) end"


# A fixed-window counter in one round trip: add ``delta`` (0 only reads), and start the expiry
# when this call created the key. django-ratelimit's get_usage needs two (``add``, then ``incr``).
_WINDOW_COUNT = ("local count = redis.call('incrby', KEYS[1], ARGV[1]) "
                 "if count == tonumber(ARGV[1]) then redis.call('expire', KEYS[1], ARGV[2]) end "
                 "return count")


class _ReusingClient(RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}

    def incr(self, key, delta):
        value = self.get_client(key, write=True).eval(_INCR_EXISTING, 1, key, delta)
        if value is None:
            raise ValueError(f"Key '{key}' not found.")
        return value

    def window_count(self, key, delta: int, timeout: int) -> int:
        return self.get_client(key, write=True).eval(_WINDOW_COUNT, 1, key, delta, timeout)

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            client = self._clients[index] = self._client(connection_pool=self._get_connection_pool(write))
        return client


class ReusingRedisCache(RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = _ReusingClient

    def window_count(self, key: str, delta: int, timeout: int) -> int:
        """The counter at ``key`` after adding ``delta``; a new counter lives ``timeout`` seconds.
        Stored as Django's Redis cache stores an integer, so ``get``/``incr`` read the same value."""
        return self._cache.window_count(self.make_and_validate_key(key), delta, timeout)
