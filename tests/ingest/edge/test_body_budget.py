"""The process-wide body budget: granted in arrival order, never over capacity, clean after
timeouts and cancellations. Pure asyncio, no I/O."""

import asyncio

import pytest

from hookyard_ingest.edge.body_intake import BodyBudget, BudgetExhausted


async def test_grants_in_arrival_order_and_never_over_capacity():
    budget = BodyBudget(10)
    first = await budget.reserve(6, 1)
    order: list[str] = []

    async def take(name: str, size: int) -> None:
        await budget.reserve(size, 5)
        order.append(name)

    big = asyncio.create_task(take("big", 8))
    await asyncio.sleep(0)
    small = asyncio.create_task(take("small", 2))  # would fit now, but waits behind "big"
    await asyncio.sleep(0.01)
    assert order == [] and budget.in_use == 6
    budget.release(first)
    await asyncio.gather(big, small)
    assert order == ["big", "small"] and budget.in_use == 10 and budget.high_water == 10


async def test_a_wait_that_runs_out_refuses_and_lets_the_next_one_in():
    budget = BodyBudget(10)
    await budget.reserve(5, 1)
    with pytest.raises(BudgetExhausted):
        await budget.reserve(8, 0.05)
    assert await asyncio.wait_for(budget.reserve(5, 1), 1) == 5  # nothing left queued in front
    assert budget.in_use == 10


async def test_a_cancelled_waiter_leaves_no_reservation_behind():
    budget = BodyBudget(10)
    held = await budget.reserve(10, 1)
    waiter = asyncio.create_task(budget.reserve(4, 5))
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    budget.release(held)
    assert budget.in_use == 0
    assert await budget.reserve(10, 0.1) == 10


async def test_a_body_over_the_whole_budget_is_reserved_as_all_of_it():
    budget = BodyBudget(10)
    assert await budget.reserve(50, 1) == 10
    budget.release(10)
    assert budget.in_use == 0 and budget.high_water == 10
