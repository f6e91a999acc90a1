"""A delivery put off because its endpoint is busy backs off instead of coming round every few ms."""

from helpers import endpoint, publish
from hookyard_common.broker.tiers import deferral_delay
from hookyard_common.delivery.worker import HANDED_ON


def test_each_deferral_in_a_row_waits_twice_as_long_up_to_the_cap():
    assert [deferral_delay(n, 0.05, 1.0) for n in range(7)] == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert deferral_delay(10_000, 1.0, 60.0) == 60.0
    assert deferral_delay(3, 2.0, 1.0) == 2.0, "the cap never undercuts the first wait"


def deferred_so_far() -> dict[str, float]:
    return {
        sample.labels["tier"]: sample.value
        for metric in HANDED_ON.collect()
        for sample in metric.samples
        if sample.name.endswith("_total") and sample.labels["kind"] == "deferred"
    }


async def test_deferred_deliveries_back_off_and_all_arrive(start_platform, receiver):
    # Tiers 50/200/1000 ms and a 50 ms slot wait: without the backoff each waiting task would
    # come round every ~0.1 s, some 150 deferrals while the endpoint works through its backlog.
    platform = await start_platform(endpoint_slot_wait_seconds=0.05, deferral_max_seconds=1.0)
    key = await platform.tenant()
    await endpoint(platform, key, receiver.behave("/busy", [(200, 0.8)]), max_in_flight=1, timeout_seconds=10)
    before = deferred_so_far()
    for n in range(6):
        await publish(platform, key, "user.created", {"n": n})
    await receiver.wait_for("/busy", 6, timeout=30)
    after = deferred_so_far()
    added = {tier: after.get(tier, 0) - before.get(tier, 0) for tier in after}
    assert sum(added.values()) < 60, added
    assert added.get("1000", 0) > 0, f"no deferral reached the longest wait: {added}"
