"""An endpoint's `rate_limit_per_second`: a burst of events is spread out to that rate per
replica (a token bucket holding one second's worth), every event still delivered."""

import json

from helpers import endpoint, publish

RATE = 5
EVENTS = 30
REPLICAS = 2  # the dispatcher makes first attempts, the retrier those deferred for the rate


async def test_deliveries_are_spread_to_the_endpoints_rate(start_platform, receiver):
    platform = await start_platform(deferral_max_seconds=0.2)
    key = await platform.tenant()
    await endpoint(platform, key, receiver.url("/metered"), event_types=["user.*"], rate_limit_per_second=RATE)
    for n in range(EVENTS):
        await publish(platform, key, "user.created", {"n": n})

    requests = await receiver.wait_for("/metered", EVENTS, timeout=15)
    times = sorted(r["at"] for r in requests)
    # Each replica sends at most a bucket (RATE) at once and RATE a second after: generously, no
    # second holds more than two seconds' worth per replica, and the whole burst takes its time.
    busiest = max(sum(1 for t in times if start <= t < start + 1) for start in times)
    assert busiest <= REPLICAS * 2 * RATE, f"{busiest} deliveries within one second"
    floor = (EVENTS - REPLICAS * RATE) / (REPLICAS * RATE)
    assert times[-1] - times[0] >= 0.75 * floor, f"{EVENTS} deliveries in {times[-1] - times[0]:.2f} s"
    assert {json.loads(r["body"])["data"]["n"] for r in requests} == set(range(EVENTS))
